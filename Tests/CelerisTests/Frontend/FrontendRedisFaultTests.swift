import FastCore
import Foundation
import XCTest

/// The frontend's Redis connections behind a TCP proxy that can stop forwarding (a silent
/// partition: nothing closes, nothing answers). Requests waiting on Redis fail within the
/// command timeout, `/health` says 503, and everything works again once the proxy forwards.
final class FrontendRedisFaultTests: RedisTestCase {
    private var proxy: TCPProxy!
    private var frontend: Spawned!
    private var port = 0

    override func setUpWithError() throws {
        try super.setUpWithError()
        proxy = try TCPProxy(upstream: redis.port)
        frontend = try start(broker: "redis://127.0.0.1:\(proxy.port)/0")
    }

    override func tearDown() {
        frontend?.stop()
        proxy?.stop()
        super.tearDown()
    }

    /// A frontend on one loop with a 500 ms command timeout and a 200 ms heartbeat.
    private func start(broker: String) throws -> Spawned {
        port = freePort()
        let p = try Spawned(
            try TestPaths.executable("celeris-frontend"),
            [
                "-b", broker, "--host", "127.0.0.1", "--port", "\(port)", "--loops", "1", "--loglevel", "debug",
                "--redis-timeout-ms", "500", "--redis-heartbeat-ms", "200",
            ], name: "frontend")
        let port = port
        let up = eventually(timeout: 10) { (try? HTTPClient.request("GET", port: port, path: "/health").status) == 200 }
        if !up { throw TestFailure("frontend did not come up: \(p.log)") }
        return p
    }

    private func health() -> Int? { try? HTTPClient.request("GET", port: port, path: "/health").status }

    /// A GET /status sent into the partition is answered 503 within the command timeout
    /// (not left hanging), /health says 503, and after the partition both work again.
    func testSilentPartitionFailsPendingRequestsAndHealthThenRecovers() throws {
        proxy.pause()
        let waiting = try RawSocket(port: port, timeout: 10)
        let sent = Date()
        try waiting.send("GET /status/abc HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n")
        let failed = try waiting.readResponse()
        XCTAssertEqual(failed.status, 503)
        XCTAssertEqual(failed.json?["error"], "broker_unavailable")
        XCTAssertLessThan(Date().timeIntervalSince(sent), 3, "within the 500 ms command timeout (plus a tick)")
        XCTAssertEqual(health(), 503, "Redis does not answer: /health says so")

        proxy.resume()
        XCTAssertTrue(eventually(timeout: 10) { health() == 200 }, "reconnected once the proxy forwards")
        let after = try HTTPClient.request("GET", port: port, path: "/status/abc")
        XCTAssertEqual(after.status, 200)
        XCTAssertEqual(after.json?["status"], "Pending...")
    }

    /// With no request in flight, the heartbeat finds the partition: /health turns 503 by itself.
    func testIdlePartitionTurnsHealthTo503() throws {
        proxy.pause()
        XCTAssertTrue(eventually(timeout: 5) { health() == 503 }, "heartbeat PING owed past the timeout")
        proxy.resume()
        XCTAssertTrue(eventually(timeout: 10) { health() == 200 })
    }

    /// A broker named by host name connects (the name is resolved off the event loop).
    func testBrokerHostNameIsResolved() throws {
        frontend.stop()
        frontend = try start(broker: "redis://localhost:\(redis.port)/0")
        XCTAssertEqual(try HTTPClient.request("GET", port: port, path: "/status/abc").status, 200)
    }
}
