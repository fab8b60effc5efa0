import CEventShim
@testable import FastCore
import Foundation
import XCTest

/// The wire formats against Celery 5.7's captured traffic (../shared/celery-wire).
final class CodecTests: XCTestCase {
    func fixture(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: TestPaths.fixtures.appendingPathComponent(name)))
    }

    /// Written parts' buffers go back to posters, one per post and only to one holding
    /// none; oversize buffers and those past the limit are not kept.
    func testOutboxHandsWrittenBuffersBackToPosters() {
        let outbox = Outbox()
        outbox.recycle([
            [UInt8](repeating: 1, count: 100), [UInt8](repeating: 2, count: Outbox.spareBytes + 1),
            [UInt8](repeating: 3, count: 200),
        ])
        var buffer: [UInt8] = []
        outbox.post(Outbox.Entry(commands: [["PING"]]), recycling: &buffer)
        XCTAssertEqual(buffer, [UInt8](repeating: 3, count: 200), "the last kept one (contents as written)")
        outbox.post(Outbox.Entry(commands: [["PING"]]), recycling: &buffer)
        XCTAssertEqual(buffer.first, 3, "a poster holding a buffer keeps it")
        buffer = []
        outbox.post(Outbox.Entry(commands: [["PING"]]), recycling: &buffer)
        XCTAssertEqual(buffer.count, 100, "the oversize one was dropped")
        buffer = []
        outbox.post(Outbox.Entry(commands: [["PING"]]), recycling: &buffer)
        XCTAssertEqual(buffer, [], "none left")
        XCTAssertEqual(outbox.take(waitingUpTo: 0).count, 4)
        outbox.recycle(Array(repeating: [UInt8](repeating: 0, count: 8), count: Outbox.spareCount + 5))
        var taken = 0
        while true {
            var b: [UInt8] = []
            outbox.post(Outbox.Entry(commands: []), recycling: &b)
            if b.capacity == 0 { break }
            taken += 1
        }
        XCTAssertEqual(taken, Outbox.spareCount)
    }

    /// RESP's command encoding as the protocol spells it: `*count`, then `$length` and the
    /// bytes per argument, each line ending CRLF; every way of writing a command agrees.
    func testRESPEncodingFollowsTheProtocol() {
        func spelled(_ args: [String]) -> [UInt8] {
            Array(("*\(args.count)\r\n" + args.map { "$\($0.utf8.count)\r\n\($0)\r\n" }.joined()).utf8)
        }
        var g = SystemRandomNumberGenerator()
        for n in [0, 1, 9, 10, 11, 99, 100, 12345] {
            let args = ["SET", String(repeating: "k", count: n), String(repeating: "\u{e9}", count: n % 7), ""]
            var out: [UInt8] = Array("*1\r\n$4\r\nPING\r\n".utf8)
            RESP.append(args, to: &out)
            XCTAssertEqual(out, Array("*1\r\n$4\r\nPING\r\n".utf8) + spelled(args), "length \(n)")
            XCTAssertEqual(RESP.format(args), spelled(args), "length \(n)")
            var named: [UInt8] = []
            RESP.append(command: "SET", args[1], args[2], args[3], to: &named)
            XCTAssertEqual(named, spelled(args), "length \(n)")
        }
        let many = (0..<12).map { _ in String(UInt64.random(in: 0...UInt64.max, using: &g)) }
        XCTAssertEqual(RESP.format(many), spelled(many), "12 arguments")
        XCTAssertEqual(RESP.format([]), Array("*0\r\n".utf8))
    }

    /// A write batch's acks, folded into one ZREM and one HDEL over every tag, are
    /// `DeliveryClaim.ackCommands` for one delivery, and their tags in order for many.
    func testFoldedAcksMatchTheAckCommands() {
        for tags in [["t-1"], ["t-1", "\u{e9}-2", String(repeating: "x", count: 300)]] {
            var bulks: [UInt8] = []
            for t in tags { RESP.appendBulk(Array(t.utf8), to: &bulks) }
            var folded: [UInt8] = []
            DeliveryClaim.appendAcks(tags: bulks, count: tags.count, to: &folded)
            var expected: [UInt8] = []
            let one = tags.map { DeliveryClaim.ackCommands(tag: $0) }
            for i in 0..<2 { RESP.append(Array(one[0][i].prefix(2)) + tags, to: &expected) }
            XCTAssertEqual(folded, expected, "\(tags.count) tags")
            if tags.count == 1 {
                var single: [UInt8] = []
                for c in one[0] { RESP.append(c, to: &single) }
                XCTAssertEqual(folded, single)
            }
            var batch = WriteBatch()
            for t in tags {
                var part = WriteBatch.Part()
                part.acknowledge(t)
                batch.add(part)
            }
            XCTAssertEqual(batch.wire, RESP.format(["MULTI"]) + expected + RESP.format(["EXEC"]))
        }
    }

    func testRESPFormatAndParseRoundTrip() {
        let args = ["LPUSH", "celery", "{\"body\": \"\u{0}binary\r\n\"}"]
        let wire = RESP.format(args)
        XCTAssertEqual(
            String(decoding: wire, as: UTF8.self),
            "*3\r\n$5\r\nLPUSH\r\n$6\r\ncelery\r\n$\(args[2].utf8.count)\r\n\(args[2])\r\n")
        XCTAssertEqual(RESP.parse(wire), .array(args.map { .string(Array($0.utf8)) }))
        XCTAssertEqual(RESP.parse(Array(":42\r\n".utf8)), .integer(42))
        XCTAssertNil(RESP.parse(Array(wire.dropLast(3))), "incomplete")
        XCTAssertNil(RESP.parse(Array("?bad\r\n".utf8)), "not RESP")
    }

    func testBase64DecodeRefusesWhatIsNotBase64() {
        XCTAssertNil(Base64.decode(Array("ab$d".utf8)))
        XCTAssertNil(Base64.decode(Array("ab=d".utf8)), "data after padding")
        XCTAssertNil(Base64.decode(Array("abcde".utf8)), "a dangling character")
        XCTAssertEqual(Base64.decode(Array("aGk".utf8)), Array("hi".utf8), "padding optional")
        // Past whole groups read four at a time: a foreign character or padding deep inside.
        let groups = String(repeating: "QUJD", count: 50)
        XCTAssertEqual(
            Base64.decode(Array((groups + "QQ==").utf8)), Array((String(repeating: "ABC", count: 50) + "A").utf8))
        XCTAssertNil(Base64.decode(Array((groups + "Q$JD" + groups).utf8)))
        XCTAssertNil(Base64.decode(Array((groups + "QU=D" + groups).utf8)), "data after padding")
        XCTAssertNil(Base64.decode(Array((groups + "QUJ").utf8 + [0xC3, 0xA9])), "a byte above 127")
    }

    func testBase64MatchesFoundationForEveryTailLength() {
        var g = SystemRandomNumberGenerator()
        for n in 0..<64 {
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }
            var out: [UInt8] = []
            Base64.encode(bytes, to: &out)
            XCTAssertEqual(String(decoding: out, as: UTF8.self), Data(bytes).base64EncodedString(), "length \(n)")
            XCTAssertEqual(Base64.decode(out), bytes, "length \(n)")
        }
    }

    func testJSONRoundTripKeepsOrderAndPythonSeparators() throws {
        let text = #"{"b": [1, -2.5, "x\"y\n", true, null], "a": {"é": 1e3}}"#
        let v = try JSONParser.parse(text)
        XCTAssertEqual(v.serialized(), #"{"b": [1, -2.5, "x\"y\n", true, null], "a": {"é": 1000.0}}"#)
        XCTAssertEqual(try JSONParser.parse(#""\ud83d\ude00""#), .string("😀"))
        for bad in ["{", "[1,]", "01", "\"abc", "{\"a\" 1}", "nul", "1 2", "[\u{01}]"] {
            XCTAssertThrowsError(try JSONParser.parse(bad), "accepted \(bad)")
        }
    }

    /// Python's `datetime.isoformat()` for aware UTC times (microseconds always written).
    func testIsoformatDigitsAndRounding() {
        XCTAssertEqual(CeleryTime.isoformat(0), "1970-01-01T00:00:00.000000+00:00")
        XCTAssertEqual(CeleryTime.isoformat(1.9999996), "1970-01-01T00:00:02.000000+00:00", "rounding carries")
        XCTAssertEqual(CeleryTime.isoformat(1_795_246_217.000_042), "2026-11-21T07:30:17.000042+00:00")
        XCTAssertEqual(CeleryTime.isoformat(253_402_300_799.5), "9999-12-31T23:59:59.500000+00:00")
        XCTAssertEqual(CeleryTime.isoformat(-62_135_596_800 + 86400 * 366), "0002-01-02T00:00:00.000000+00:00")
        for epoch in [1.25, 1_000_000_000.123456, 1_795_246_217.699307] {
            XCTAssertEqual(CeleryTime.parse(CeleryTime.isoformat(epoch))!, epoch, accuracy: 1e-6)
        }
    }

    /// The date arithmetic agrees with glibc's `gmtime_r` over years 1–9999, days either
    /// side of the epoch and leap days; years past 9999 keep every digit.
    func testIsoformatCalendarMatchesGmtime() {
        func viaGmtime(_ seconds: Int) -> String {
            var t = time_t(seconds)
            var tm = tm()
            gmtime_r(&t, &tm)
            let year = String(Int(tm.tm_year) + 1900)
            func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
            return String(repeating: "0", count: max(0, 4 - year.count)) + year + "-" + two(tm.tm_mon + 1) + "-"
                + two(tm.tm_mday) + "T" + two(tm.tm_hour) + ":" + two(tm.tm_min) + ":" + two(tm.tm_sec)
                + ".000000+00:00"
        }
        var rng = SystemRandomNumberGenerator()
        var samples = [-62_135_596_800, -86401, -86400, -1, 0, 86399, 951_782_400, 4_107_456_000, 253_402_300_799]
        for _ in 0..<20000 { samples.append(Int.random(in: -62_135_596_800...253_402_300_799, using: &rng)) }
        for s in samples { XCTAssertEqual(CeleryTime.isoformat(Double(s)), viaGmtime(s), "epoch \(s)") }
        XCTAssertEqual(CeleryTime.isoformat(253_402_300_800), "10000-01-01T00:00:00.000000+00:00")
    }

    func testResultRecordMatchesCeleryByteForByte() {
        // SETEX value captured from a Celery 5.7 worker running add(2, 3).
        let captured =
            #"{"status": "SUCCESS", "result": 5, "traceback": null, "children": [], "date_done": "2026-11-21T07:30:17.699307+00:00", "task_id": "27998f93-23dc-42c3-92aa-c73e8969a75c"}"#
        let r = ResultRecord(
            taskId: "27998f93-23dc-42c3-92aa-c73e8969a75c", state: .success, result: 5, dateDone: 1_795_246_217.699307)
        XCTAssertEqual(r.serialized(), captured)
        let progress = ResultRecord(taskId: "t", state: .progress, result: ["progress": 0])
        XCTAssertEqual(
            progress.serialized(),
            #"{"status": "PROGRESS", "result": {"progress": 0}, "traceback": null, "children": [], "date_done": null, "task_id": "t"}"#
        )
        XCTAssertEqual(
            TaskFailure(type: "ValueError", message: "boom").resultJSON.serialized(),
            #"{"exc_type": "ValueError", "exc_message": ["boom"], "exc_module": "builtins"}"#)
    }

    func testStoreCommandsWrittenInPlaceMatchTheCommandArrays() {
        // Values whose length crosses a digit boundary of the length line (moved in front
        // of the value after it is written), appended after bytes already in the buffer.
        for size in [0, 1, 7, 8, 9, 10, 90, 100, 900, 1000, 9000, 10_000, 100_000] {
            let record = ResultRecord(
                taskId: "id-\(size)", state: .success, result: .string(String(repeating: "x", count: size)),
                dateDone: 1_795_246_217.5)
            var expected: [UInt8] = Array("*1\r\n$4\r\nPING\r\n".utf8)
            for c in record.storeCommands() { RESP.append(c, to: &expected) }
            var out: [UInt8] = Array("*1\r\n$4\r\nPING\r\n".utf8)
            record.appendStoreCommands(to: &out)
            XCTAssertEqual(out, expected, "result of \(size) characters")
        }
    }
    func testQueueKeysFollowKombu() {
        XCTAssertEqual(QueueKeys.listKey(queue: "celery", priority: 1), "celery")
        XCTAssertEqual(QueueKeys.listKey(queue: "celery", priority: 5), "celery\u{06}\u{16}3")
        XCTAssertEqual(QueueKeys.listKey(queue: "celery", priority: 9), "celery\u{06}\u{16}9")
        XCTAssertEqual(
            QueueKeys.consumeOrder(queues: ["a", "b"]),
            [
                "a", "b", "a\u{06}\u{16}3", "b\u{06}\u{16}3", "a\u{06}\u{16}6", "b\u{06}\u{16}6", "a\u{06}\u{16}9",
                "b\u{06}\u{16}9",
            ])
        XCTAssertEqual(QueueKeys.queueName(ofListKey: "fetch_queue\u{06}\u{16}6"), "fetch_queue")
        XCTAssertEqual(
            QueueKeys.queueName(ofListKey: "q\u{06}\u{16}x\u{06}\u{16}3"), "q\u{06}\u{16}x", "the last separator")
        XCTAssertEqual(QueueKeys.queueName(ofListKey: "caf\u{e9}"), "caf\u{e9}")
        XCTAssertEqual(QueueKeys.queueName(ofListKey: "\u{06}\u{16}"), "")
        XCTAssertEqual(QueueKeys.queueName(ofListKey: ""), "")
        XCTAssertEqual(
            QueueKeys.bindingMember(routingKey: "celery", queue: "celery"), "celery\u{06}\u{16}\u{06}\u{16}celery")
    }

    func testRedisURLs() throws {
        XCTAssertEqual(
            try RedisEndpoint(url: "redis://10.0.0.5:6380/2"), RedisEndpoint(host: "10.0.0.5", port: 6380, db: 2))
        XCTAssertEqual(try RedisEndpoint(url: "redis://:pw@h/0").password, "pw")
        XCTAssertEqual(try RedisEndpoint(url: "redis://localhost").port, 6379)
        XCTAssertThrowsError(try RedisEndpoint(url: "http://x"))
        XCTAssertThrowsError(try RedisEndpoint(url: "redis://h:99999/0"))
    }

    func testWebSocketAcceptKeyAndFraming() {
        var out = [CChar](repeating: 0, count: 29)
        ce_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, &out)
        XCTAssertEqual(String(cString: out), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")  // RFC 6455 section 1.3

        var info = ce_ws_frame_info()
        let frame: [UInt8] = [0x81, 0xFE, 0x01, 0x00, 1, 2, 3, 4]
        XCTAssertEqual(ce_ws_parse_header(frame, frame.count, &info), 1)
        XCTAssertEqual(info.payload_len, 256)
        XCTAssertEqual(info.header_len, 8)
        XCTAssertEqual(info.masked, 1)
        XCTAssertEqual(ce_ws_parse_header(frame, 3, &info), 0)
        let nonMinimal: [UInt8] = [0x81, 0xFE, 0x00, 0x05]
        XCTAssertEqual(ce_ws_parse_header(nonMinimal, 4, &info), -1)
    }

    func testUTF8Validation() {
        let valid: [[UInt8]] = [Array("héllo €𝄞".utf8), []]
        let invalid: [[UInt8]] = [[0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0xFF]]
        for v in valid { XCTAssertEqual(ce_utf8_valid(v, v.count), 1) }
        for v in invalid { XCTAssertEqual(ce_utf8_valid(v, v.count), 0, "\(v)") }
    }
}
