import FastCore
import Foundation
import XCTest

/// `--loops 3`: loops share one port (SO_REUSEPORT); the connection limit, `/health`,
/// the gauges, fan-out and graceful shutdown span all of them.
final class MultiLoopTests: FrontendTestCase {
    override var frontendFlags: [String] { ["--loops", "3", "--max-connections", "12"] }

    /// Twelve WebSockets spread by the kernel over the loops: each gets every update,
    /// `/health` counts them all, and the thirteenth connection is refused.
    func testEveryLoopFansOutAndTheLimitsAreTotals() throws {
        let clients = try (0..<11).map { _ in try WSFrame.open(port: port) }
        let health = try HTTPClient.request("GET", port: port, path: "/health")
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(health.json?["websockets"], 11, "every loop's WebSockets are counted")
        Thread.sleep(forTimeInterval: 0.1)  // the /health connection is closed
        let twelfth = try RawSocket(port: port)  // with the 11 WebSockets: the limit of 12
        try twelfth.send("GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        XCTAssertEqual(try twelfth.readResponse().status, 200)
        let refused = try RawSocket(port: port).readResponse()
        XCTAssertEqual(refused.status, 503, "the limit counts connections on every loop")
        XCTAssertEqual(refused.json?["error"], "too_many_connections")

        for i in 0..<3 {
            try client.command("PUBLISH", "task_status", #"{"task_id": "t\#(i)", "state": "PROGRESS"}"#)
        }
        for c in clients {
            for i in 0..<3 { XCTAssertEqual(try WebSocketFanOutTests.nextText(c)["task_id"]?.stringValue, "t\(i)") }
        }
    }

    /// SIGTERM: WebSockets on every loop get 1001, requests in flight are answered, exit 0.
    func testSigtermShutsEveryLoopDownGracefully() throws {
        let sockets = try (0..<6).map { _ in try WSFrame.open(port: port) }
        let blocker = try RawSocket(port: redis.port)
        try blocker.send("*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$3\r\n0.8\r\n")
        Thread.sleep(forTimeInterval: 0.1)
        let waiting = try (0..<4).map { _ in try RawSocket(port: port, timeout: 10) }
        for w in waiting { try w.send("GET /status/abc HTTP/1.1\r\nHost: localhost\r\n\r\n") }
        Thread.sleep(forTimeInterval: 0.1)
        kill(frontend.process.processIdentifier, SIGTERM)
        for ws in sockets {
            let close = try WSFrame.read(ws)
            XCTAssertEqual(close.opcode, 0x8)
            XCTAssertEqual(WSFrame.closeCode(close.payload), 1001)
        }
        for w in waiting { XCTAssertEqual(try w.readResponse().status, 200, "the request in flight was answered") }
        frontend.process.waitUntilExit()
        XCTAssertEqual(frontend.process.terminationStatus, 0)
    }
}
