import FastCore
import Foundation
import XCTest

/// The frontend's event-loop links (commands: AsyncRedis; result subscriptions: ResultSubscriber)
/// to a TLS-only redis-server (`--port 0`: no plaintext port at all), from a `rediss://` broker
/// URL: a task is queued, a WebSocket gets a firehose PUBLISH and a subscribed task's record,
/// all made over TLS; a wrong CA fails the handshake ("certificate verify failed" logged,
/// /health 503) and the first bytes a rediss:// link sends are a TLS ClientHello, never RESP.
final class AsyncTLSTests: XCTestCase {
    private var certs: TLSFixtures!
    private var redis: TLSRedisServer!
    private var frontend: Spawned?
    private var port = 0

    override func setUpWithError() throws {
        certs = try TLSFixtures()
        redis = try TLSRedisServer(certs)
    }

    override func tearDown() {
        frontend?.stop()
        redis?.stop()
        redis = nil
        certs = nil
    }

    private func cli(_ args: [String]) throws -> String { try redis.cli(args) }

    /// Restart redis-server requiring client certificates (`--tls-auth-clients yes`).
    private func requireClientCertificates() throws {
        redis.stop()
        redis = try TLSRedisServer(certs, authClients: true)
    }

    private func healthIs(_ status: Int) -> Bool {
        let port = port
        return eventually(timeout: 10) {
            (try? HTTPClient.request("GET", port: port, path: "/health").status) == status
        }
    }

    private func startFrontend(broker: String, waitHealthy: Bool = true) throws {
        port = freePort()
        let p = try Spawned(
            try TestPaths.executable("celeris-frontend"),
            ["-b", broker, "--host", "127.0.0.1", "--port", "\(port)", "--loops", "1", "--loglevel", "debug"],
            name: "frontend-tls")
        frontend = p
        guard waitHealthy else { return }
        let port = port
        let up = eventually(timeout: 10) { (try? HTTPClient.request("GET", port: port, path: "/health").status) == 200 }
        if !up { throw TestFailure("frontend did not come up over TLS: \(p.log)") }
    }

    private var tlsBroker: String { redis.url("ssl_ca_certs=\(certs.caFile)") }

    /// POST /tasks over a TLS command link: the message is in the `celery` list, read back over TLS.
    func testTaskIsQueuedOverTLS() throws {
        try startFrontend(broker: tlsBroker)
        let r = try HTTPClient.request("POST", port: port, path: "/tasks")
        XCTAssertEqual(r.status, 200)
        let id = try XCTUnwrap(r.json?["task_id"]?.stringValue)
        XCTAssertEqual(try cli(["LLEN", "celery"]), "1")
        XCTAssertTrue(try cli(["LINDEX", "celery", "0"]).contains(id), "the queued message is the task's")
        XCTAssertTrue(try cli(["INFO", "commandstats"]).contains("cmdstat_subscribe"), "the pub/sub link over TLS too")
    }

    /// 400 POST /tasks from 16 threads at once (many commands written per loop turn, sent
    /// together over TLS): every one answered 200 and queued; after Redis kills the frontend's
    /// links, they reconnect over TLS and serve again.
    func testConcurrentTasksAndReconnectOverTLS() throws {
        try startFrontend(broker: tlsBroker)
        let port = port
        let ok = LockedCounter()
        DispatchQueue.concurrentPerform(iterations: 16) { _ in
            for _ in 0..<25 {
                if (try? HTTPClient.request("POST", port: port, path: "/tasks").status) == 200 { ok.increment() }
            }
        }
        XCTAssertEqual(ok.value, 400)
        XCTAssertEqual(try cli(["LLEN", "celery"]), "400")
        XCTAssertNotEqual(try cli(["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]), "0")
        XCTAssertNotEqual(try cli(["CLIENT", "KILL", "TYPE", "pubsub"]), "0")
        XCTAssertTrue(
            eventually(timeout: 10) { (try? HTTPClient.request("POST", port: port, path: "/tasks").status) == 200 })
        XCTAssertTrue(
            eventually(timeout: 10) { (try? self.cli(["PUBSUB", "NUMSUB", "task_status"]))?.hasSuffix("1") == true })
    }

    /// A WebSocket with no subscriptions gets a task_status PUBLISH made over TLS; one that
    /// subscribes to a task (the result subscriber's own TLS link) gets its PENDING state, then
    /// the record stored and published over TLS.
    func testWebSocketsReceivePublishesOverTLS() throws {
        try startFrontend(broker: tlsBroker)
        let all = try WSFrame.open(port: port)
        XCTAssertTrue(
            eventually(timeout: 10) { (try? self.cli(["PUBSUB", "NUMSUB", "task_status"]))?.hasSuffix("1") == true })
        XCTAssertEqual(try cli(["PUBLISH", "task_status", #"{"task_id": "t1", "state": "PROGRESS"}"#]), "1")
        let update = try WebSocketFanOutTests.nextText(all)
        XCTAssertEqual(update["task_id"], "t1")
        XCTAssertEqual(update["state"], "PROGRESS")

        let one = try WSFrame.open(port: port)  // opened after the firehose message: it gets only its task's
        try one.send(WSFrame.make(opcode: 0x1, payload: Array(#"{"subscribe": ["tls-task"]}"#.utf8)))
        let first = try WebSocketFanOutTests.nextText(one)
        XCTAssertEqual(first["task_id"], "tls-task")
        XCTAssertEqual(first["state"], "PENDING")
        let done = ResultRecord(taskId: "tls-task", state: .success, result: 7, dateDone: 1).serialized()
        XCTAssertEqual(try cli(["SET", ResultRecord.key("tls-task"), done]), "OK")
        XCTAssertEqual(try cli(["PUBLISH", ResultRecord.key("tls-task"), done]), "1", "the subscriber's TLS link")
        let final = try WebSocketFanOutTests.nextText(one)
        XCTAssertEqual(final["task_id"], "tls-task")
        XCTAssertEqual(final["state"], "SUCCESS")
    }

    /// A CA that did not sign the server's certificate: every handshake fails, the log says
    /// "certificate verify failed", /health stays 503 and no session reaches the server.
    func testWrongCAFailsTheHandshake() throws {
        try startFrontend(
            broker: redis.url("ssl_ca_certs=\(certs.otherCAFile)"), waitHealthy: false)
        let p = try XCTUnwrap(frontend)
        XCTAssertTrue(eventually(timeout: 10) { p.log.contains("certificate verify failed") }, p.log)
        XCTAssertTrue(p.log.contains("TLS handshake with 127.0.0.1:\(redis.port) failed"), p.log)
        let port = port
        XCTAssertTrue(
            eventually(timeout: 10) { (try? HTTPClient.request("GET", port: port, path: "/health").status) == 503 })
        let stats = try cli(["INFO", "commandstats"])
        XCTAssertFalse(stats.contains("cmdstat_subscribe"), "no frontend link ever ran a command: \(stats)")
        XCTAssertFalse(stats.contains("cmdstat_rpush") || stats.contains("cmdstat_lpush"), stats)
    }

    /// The certificate must name the host asked for: `ssl_server_name` naming another host fails
    /// ("hostname mismatch"); `localhost` (in the certificate's SANs) connects.
    func testHostNameIsChecked() throws {
        try startFrontend(broker: tlsBroker + "&ssl_server_name=redis.example.com", waitHealthy: false)
        let p = try XCTUnwrap(frontend)
        XCTAssertTrue(eventually(timeout: 10) { p.log.contains("hostname mismatch") }, p.log)
        XCTAssertTrue(healthIs(503))
        p.stop()
        try startFrontend(broker: tlsBroker + "&ssl_server_name=localhost")
        XCTAssertEqual(try HTTPClient.request("POST", port: port, path: "/tasks").status, 200)
        XCTAssertEqual(try cli(["LLEN", "celery"]), "1")
    }

    /// `ssl_cert_reqs=none`: encrypted without checking the certificate, so the wrong CA connects.
    func testCertReqsNoneDoesNotVerify() throws {
        try startFrontend(
            broker: redis.url("ssl_cert_reqs=none&ssl_ca_certs=\(certs.otherCAFile)"))
        XCTAssertEqual(try HTTPClient.request("POST", port: port, path: "/tasks").status, 200)
        XCTAssertEqual(try cli(["LLEN", "celery"]), "1")
    }

    /// A server that requires client certificates: refused without one, served with
    /// `ssl_certfile` / `ssl_keyfile`.
    func testClientCertificate() throws {
        try requireClientCertificates()
        try startFrontend(broker: tlsBroker, waitHealthy: false)
        let p = try XCTUnwrap(frontend)
        XCTAssertTrue(
            eventually(timeout: 10) { p.log.contains("certificate required") }, p.log)
        XCTAssertTrue(healthIs(503))
        p.stop()
        try startFrontend(
            broker: tlsBroker + "&ssl_certfile=\(certs.cert("client"))&ssl_keyfile=\(certs.key("client"))")
        XCTAssertEqual(try HTTPClient.request("POST", port: port, path: "/tasks").status, 200)
    }

    /// The first bytes a rediss:// frontend sends to a listener of ours are a TLS handshake
    /// record (0x16 0x03 …: a ClientHello), not a RESP command.
    func testFirstBytesAreAClientHello() throws {
        let listener = try LoopbackListener()
        try startFrontend(
            broker: "rediss://127.0.0.1:\(listener.port)/0?ssl_ca_certs=\(certs.caFile)", waitHealthy: false)
        let first = try listener.acceptAndRead(timeout: 10)
        XCTAssertGreaterThanOrEqual(first.count, 3, "bytes received")
        XCTAssertEqual(Array(first.prefix(2)), [0x16, 0x03], "a TLS handshake record, not plaintext RESP")
        XCTAssertNotEqual(first.first, UInt8(ascii: "*"))
    }
}
