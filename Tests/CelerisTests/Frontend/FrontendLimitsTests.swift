import FastCore
import Foundation
import XCTest

/// Timeouts, connection limits, HEAD, 100-continue and back-pressure on the frontend.
/// One loop, so the per-connection Redis bound is exact (MultiLoopTests covers several).
final class FrontendLimitsTests: FrontendTestCase {
    override var frontendFlags: [String] {
        [
            "--loops", "1",
            "--header-timeout-ms", "400", "--idle-timeout-ms", "600", "--max-connections", "4", "--max-pending-redis",
            "2",
        ]
    }

    func testSlowlorisGets408() throws {
        let s = try RawSocket(port: port)
        try s.send("GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        let r = try s.readResponse()
        XCTAssertEqual(r.status, 408)
        XCTAssertEqual(r.json?["error"], "request_timeout")
        XCTAssertTrue(s.isClosedByPeer())
    }

    func testIdleKeepAliveConnectionIsClosed() throws {
        let s = try RawSocket(port: port)
        try s.send("GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        XCTAssertEqual(try s.readResponse().status, 200)
        let answered = Date()
        XCTAssertTrue(s.isClosedByPeer(), "closed within the socket's 5 s read timeout")
        XCTAssertGreaterThan(Date().timeIntervalSince(answered), 0.4, "not before --idle-timeout-ms (600)")
    }

    func testConnectionsBeyondTheLimitGet503() throws {
        let held = try (0..<4).map { _ in try RawSocket(port: port) }
        Thread.sleep(forTimeInterval: 0.1)
        let extra = try RawSocket(port: port)
        let r = try extra.readResponse()
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.json?["error"], "too_many_connections")
        XCTAssertEqual(r.headers["retry-after"], "1")
        held.forEach { _ = $0 }
    }

    func testHeadHasHeadersButNoBody() throws {
        let s = try RawSocket(port: port)
        try s.send("HEAD /health HTTP/1.1\r\nHost: localhost\r\n\r\nGET /status/x HTTP/1.1\r\nHost: localhost\r\n\r\n")
        let head = try s.read(until: Array("\r\n\r\n".utf8))
        let text = String(decoding: head, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 200 OK"), text)
        XCTAssertTrue(text.contains("Content-Length: "), text)
        // The next bytes are the second response, not a body.
        let next = try s.readResponse()
        XCTAssertEqual(next.json?["status"], "Pending...")
    }

    func testExpect100Continue() throws {
        let s = try RawSocket(port: port)
        let body = #"{"task": "add", "args": [1, 2]}"#
        try s.send(
            "POST /tasks HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
                + "Expect: 100-continue\r\n\r\n")
        let interim = String(decoding: try s.read(until: Array("\r\n\r\n".utf8)), as: UTF8.self)
        XCTAssertTrue(interim.hasPrefix("HTTP/1.1 100 Continue"), interim)
        try s.send(body)
        XCTAssertEqual(try s.readResponse().status, 200)
    }

    /// A stalled Redis: beyond the pending bound, requests get 503 with Retry-After instead of queueing.
    func testBackPressureWhenRedisIsSlow() throws {
        let blocker = try RawSocket(port: redis.port)
        try blocker.send("*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$3\r\n1.5\r\n")  // Redis stops answering for 1.5 s
        Thread.sleep(forTimeInterval: 0.1)
        let started = Date()
        let sockets = try (0..<3).map { _ in try RawSocket(port: port, timeout: 10) }
        for s in sockets { try s.send("GET /status/abc HTTP/1.1\r\nHost: localhost\r\n\r\n") }
        let statuses = try sockets.map { try $0.readResponse().status }.sorted()
        XCTAssertEqual(statuses, [200, 200, 503])
        XCTAssertGreaterThan(Date().timeIntervalSince(started), 1.0, "the 200s waited for the stalled Redis")
        XCTAssertEqual(String(decoding: try blocker.read(until: Array("\r\n".utf8)), as: UTF8.self), "+OK\r\n")
    }

    /// SIGTERM: requests in flight (here, waiting on a stalled Redis) are answered, WebSockets get 1001, then exit.
    func testGracefulShutdownFinishesRequestsInFlight() throws {
        let ws = try WSFrame.open(port: port)
        let blocker = try RawSocket(port: redis.port)
        try blocker.send("*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$3\r\n0.8\r\n")
        Thread.sleep(forTimeInterval: 0.1)
        let waiting = try RawSocket(port: port, timeout: 10)
        try waiting.send("GET /status/abc HTTP/1.1\r\nHost: localhost\r\n\r\n")
        Thread.sleep(forTimeInterval: 0.1)
        kill(frontend.process.processIdentifier, SIGTERM)
        let close = try WSFrame.read(ws)
        XCTAssertEqual(close.opcode, 0x8)
        XCTAssertEqual(WSFrame.closeCode(close.payload), 1001)
        XCTAssertEqual(try waiting.readResponse().status, 200, "the request in flight was answered")
        frontend.process.waitUntilExit()
        XCTAssertEqual(frontend.process.terminationStatus, 0)
        XCTAssertThrowsError(try RawSocket(port: port), "no longer accepting")
    }
}
