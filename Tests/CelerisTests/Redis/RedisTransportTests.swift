import CEventShim
import FastCore
import Foundation
import XCTest

/// The blocking connection over both transports (io_uring and the plain socket):
/// pipelines, replies larger than one receive, timeouts and a server that goes away.
final class RedisTransportTests: RedisTestCase {
    func connect(_ io: IOMode, timeoutMs: Int = 2000) throws -> RedisConnection {
        let r = try RedisConnection(endpoint: redis.endpoint, timeoutMs: timeoutMs, io: io)
        XCTAssertEqual(r.usesUring, io == .uring)
        return r
    }

    func testPipelinesAndLargeRepliesOnEachTransport() throws {
        for io in [IOMode.uring, .socket] {
            let r = try connect(io)
            let big = String(repeating: "x", count: 300_000)  // several 64 KiB receives
            let replies = try r.pipeline(
                [["SET", "k-\(io)", big], ["GET", "k-\(io)"], ["INCR", "n-\(io)"]]
                    + (0..<500).map {
                        ["RPUSH", "l-\(io)", String($0)]
                    })
            XCTAssertEqual(replies.count, 503)
            XCTAssertEqual(replies[0], .status("OK"))
            XCTAssertEqual(replies[1].bytes?.count, 300_000, "\(io)")
            XCTAssertEqual(replies[2], .integer(1))
            XCTAssertEqual(replies.last, .integer(500))
            XCTAssertEqual(try r.command("LLEN", "l-\(io)"), .integer(500))
        }
    }

    /// A receive is handed to the reader a piece at a time: thousands of pipelined
    /// replies of every size around a piece's (4 KiB) read back byte for byte, each
    /// split across pieces and receives at a different place.
    func testManyRepliesAcrossFeedPiecesReadBackIntact() throws {
        for io in [IOMode.uring, .socket] {
            let r = try connect(io)
            let values = (0..<2000).map { i in
                String(decoding: (0..<(i * 37 % 9000)).map { UInt8(33 + ($0 * 31 + i) % 90) }, as: UTF8.self)
            }
            let stored = try r.pipeline(values.enumerated().map { ["SET", "v-\(io)-\($0.offset)", $0.element] })
            XCTAssertTrue(stored.allSatisfy { $0 == .status("OK") }, "\(io)")
            try r.append(values.indices.map { ["GET", "v-\(io)-\($0)"] } + [["PING"]])
            for (i, v) in values.enumerated() {
                XCTAssertEqual(try r.read { Array($0.bytes) }, Array(v.utf8), "\(io): value \(i)")
            }
            XCTAssertEqual(try r.read(), .status("PONG"))
        }
    }

    /// Replies are built in one reusable block per connection: a reply that outgrows it
    /// (nested arrays of many elements, a 5 MB value past the block's keep limit) reads
    /// back byte for byte, and so do the small replies read after it, in place and copied.
    func testRepliesOutgrowingTheReplyBlockReadBackIntact() throws {
        for io in [IOMode.uring, .socket] {
            let r = try connect(io)
            let items = (0..<3000).map { String(repeating: Character(UnicodeScalar(97 + $0 % 26)!), count: $0 % 97) }
            let huge = String(repeating: "z", count: 5_000_000)
            _ = try r.pipeline([["DEL", "l"]] + items.map { ["RPUSH", "l", $0] } + [["SET", "huge", huge]])
            for round in 0..<3 {
                let nested = try r.pipeline([
                    ["MULTI"], ["LRANGE", "l", "0", "-1"], ["GET", "huge"], ["LLEN", "l"], ["EXEC"],
                ])
                XCTAssertEqual(nested[4].elements?[0].elements?.compactMap(\.text), items, "\(io) round \(round)")
                XCTAssertEqual(nested[4].elements?[1].bytes?.count, huge.utf8.count)
                XCTAssertEqual(nested[4].elements?[2], .integer(3000))
            }
            XCTAssertEqual(try r.command("GET", "nothing"), .null)
            try r.append(["LRANGE", "l", "0", "-1"])
            let lengths = try r.read { reply in (0..<reply.count).map { reply[$0].bytes.count } }
            XCTAssertEqual(lengths, items.map(\.utf8.count), "\(io): read in place")
        }
    }

    func testTimeoutAndServerGoneAreConnectionErrors() throws {
        for io in [IOMode.uring, .socket] {
            let r = try connect(io, timeoutMs: 300)
            let started = Date()
            XCTAssertThrowsError(try r.command("BLPOP", "never-\(io)", "5"), "\(io)") { error in
                guard case RedisError.connection = error else { return XCTFail("\(io): \(error)") }
            }
            XCTAssertLessThan(Date().timeIntervalSince(started), 3, "\(io): the 300 ms timeout, not BLPOP's 5 s")
            let victim = try connect(io)
            let id = try victim.command("CLIENT", "ID").integer ?? 0
            _ = try client.command("CLIENT", "KILL", "ID", String(id))
            XCTAssertThrowsError(try victim.command("PING"), "\(io)")
        }
    }
}
