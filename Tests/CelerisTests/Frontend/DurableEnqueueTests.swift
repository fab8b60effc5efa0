import FastCore
import Foundation
import XCTest

/// A redis-server replicating `master` (`--replicaof`), returned once its link is up and the
/// master counts it.
final class ReplicaServer {
    let port: Int
    let process: Spawned
    var endpoint: RedisEndpoint { RedisEndpoint(host: "127.0.0.1", port: port) }

    init(of master: RedisServer) throws {
        port = freePort()
        process = try Spawned(
            "/usr/bin/redis-server",
            [
                "--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode",
                "no", "--replicaof", "127.0.0.1", "\(master.port)", "--dir", NSTemporaryDirectory(),
                // Its own file: the full sync writes one even with --save "" (not a /tmp/dump.rdb other runs share).
                "--dbfilename", "replica-\(port).rdb",
            ],
            name: "replica-\(port)")
        let masterClient = try master.client()
        let endpoint = endpoint
        let linked = eventually(timeout: 15) {
            guard let replica = try? RedisConnection(endpoint: endpoint),
                let status = try? replica.command("INFO", "replication").text
            else { return false }
            return status.contains("master_link_status:up")
                && (try? masterClient.info("replication", "connected_slaves")) == 1
        }
        if !linked { throw TestFailure("replica on \(port) did not link to \(master.port): \(process.log)") }
    }

    func client() throws -> RedisConnection { try RedisConnection(endpoint: endpoint) }

    /// SIGSTOP: the master still counts it, but it acknowledges nothing.
    func pause() { kill(process.process.processIdentifier, SIGSTOP) }
    func resume() { kill(process.process.processIdentifier, SIGCONT) }

    func stop() {
        resume()
        process.stop()
        try? FileManager.default.removeItem(
            atPath: (NSTemporaryDirectory() as NSString).appendingPathComponent("replica-\(port).rdb"))
    }
}

/// `--durable-enqueue N`: POST /tasks and /process answer 200 only once N replicas hold the
/// task (one Redis WAIT per batch of pushes, at most one in flight), 503 `not_replicated` otherwise;
/// off by default (no WAIT sent).
final class DurableEnqueueTests: XCTestCase {
    var master: RedisServer!
    var replica: ReplicaServer!
    var frontend: Spawned?
    var port = 0

    override func setUpWithError() throws {
        master = try RedisServer()
        replica = try ReplicaServer(of: master)
    }

    override func tearDown() {
        frontend?.stop()
        replica?.stop()
        master?.stop()
    }

    private func startFrontend(_ extra: [String]) throws {
        port = freePort()
        frontend = try CelerisProcess.frontend(redis: master, port: port, extra: extra)
    }

    /// Calls of a command counted in `INFO commandstats` (0 when absent).
    private func calls(_ client: RedisConnection, _ command: String) throws -> Int {
        let text = try client.command("INFO", "commandstats").text ?? ""
        guard let line = text.split(separator: "\r\n").first(where: { $0.hasPrefix("cmdstat_\(command):") }),
            let field = line.split(separator: ",").first(where: { $0.contains("calls=") }),
            let n = Int(field.split(separator: "=").last ?? "")
        else { return 0 }
        return n
    }

    private func taskId(_ r: HTTPResponse) throws -> String {
        try XCTUnwrap(r.json?["task_id"]?.stringValue, "no task_id in \(r.status) \(r.text)")
    }

    /// The task ids of the messages queued in `queue`, head to tail.
    private func queuedIds(_ client: RedisConnection, _ queue: String = "celery") throws -> [String] {
        try (client.command("LRANGE", queue, "0", "-1").elements ?? []).map { item in
            let envelope = try JSONParser.parse(try XCTUnwrap(item.bytes))
            return try XCTUnwrap(envelope["headers"]?["id"]?.stringValue)
        }
    }

    func testEveryAnsweredTaskIsOnTheReplicaWhenTheAnswerArrives() throws {
        try startFrontend(["--durable-enqueue", "1", "--durable-timeout-ms", "1000"])
        let replicaClient = try replica.client()
        let masterClient = try master.client()
        var sent: [String] = []
        for i in 1...20 {
            let r = try HTTPClient.request("POST", port: port, path: "/tasks?task_length=0")
            XCTAssertEqual(r.status, 200, r.text)
            sent.append(try taskId(r))
            // The point of WAIT: the replica holds the message before the client hears 200.
            XCTAssertEqual(try replicaClient.command("LLEN", "celery").integer, Int64(i))
        }
        let process = try HTTPClient.request("POST", port: port, path: "/process?blob_path=docs/a.txt")
        XCTAssertEqual(process.status, 200, process.text)
        let workflowId = try taskId(process)
        XCTAssertEqual(try queuedIds(replicaClient, "fetch_queue"), [workflowId])

        // LPUSH puts the newest at the head.
        XCTAssertEqual(try queuedIds(replicaClient), sent.reversed())
        XCTAssertEqual(
            try masterClient.keys(),
            [
                "celery", "_kombu.binding.celery", "_kombu.binding_permanent.celery", "fetch_queue",
                "_kombu.binding.fetch_queue", "_kombu.binding_permanent.fetch_queue",
            ])
        XCTAssertEqual(try replicaClient.keyspace(), try masterClient.keyspace())
        XCTAssertEqual(try calls(masterClient, "wait"), 21, "one WAIT per request sent one at a time")
        XCTAssertEqual(try calls(masterClient, "lpush"), 21)
        let metrics = try Prometheus.scrape(port: port)
        XCTAssertFalse(metrics.keys.contains { $0.hasPrefix("celeris_frontend_enqueue_not_replicated_total") })
        XCTAssertEqual(metrics["celeris_frontend_wait_seconds_count"], 21)
    }

    /// Requests arriving together (on many connections, read in one loop turn) share one WAIT.
    func testConcurrentRequestsShareWaits() throws {
        try startFrontend(["--durable-enqueue", "1", "--loops", "1"])
        let replicaClient = try replica.client()
        let masterClient = try master.client()
        let request = "POST /tasks?task_length=0 HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Length: 0\r\n\r\n"
        let sockets = try (0..<50).map { _ in try RawSocket(port: port) }
        for s in sockets { try s.send(request) }
        var ids: [String] = []
        for s in sockets {
            let r = try s.readResponse()
            XCTAssertEqual(r.status, 200, r.text)
            ids.append(try taskId(r))
        }
        XCTAssertEqual(try replicaClient.command("LLEN", "celery").integer, 50)
        XCTAssertEqual(Set(try queuedIds(replicaClient)), Set(ids))
        XCTAssertEqual(try calls(masterClient, "lpush"), 50)
        let waits = try calls(masterClient, "wait")
        print("50 concurrent requests: \(waits) WAIT(s)")
        XCTAssertGreaterThanOrEqual(waits, 1)
        XCTAssertLessThan(waits, 50, "requests read in one loop turn must share a WAIT")
        XCTAssertEqual(try replicaClient.keyspace(), try masterClient.keyspace())
    }

    func testPausedReplicaAnswers503NotReplicatedWithinTheTimeout() throws {
        try startFrontend(["--durable-enqueue", "1", "--durable-timeout-ms", "200"])
        let masterClient = try master.client()
        replica.pause()
        defer { replica.resume() }
        let started = Date()
        let r = try HTTPClient.request("POST", port: port, path: "/tasks?task_length=0")
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(r.status, 503, r.text)
        XCTAssertEqual(r.headers["retry-after"], "1")
        XCTAssertEqual(r.json?["error"]?.stringValue, "not_replicated")
        let detail = try XCTUnwrap(r.json?["detail"]?.stringValue)
        XCTAssertTrue(detail.contains("reached 0 of 1 replicas within 200 ms"), detail)
        XCTAssertTrue(detail.contains("retry with the same task_id"), detail)
        XCTAssertGreaterThanOrEqual(elapsed, 0.19)
        XCTAssertLessThan(elapsed, 2.0)
        let id = try taskId(r)
        // The task is in the primary's queue; only its replication is unconfirmed.
        XCTAssertEqual(try queuedIds(masterClient), [id])
        XCTAssertEqual(try masterClient.keys(), ["celery", "_kombu.binding.celery", "_kombu.binding_permanent.celery"])
        let metrics = try Prometheus.scrape(port: port)
        XCTAssertEqual(metrics[Self.notReplicated("too_few_replicas")], 1)
        XCTAssertNil(metrics[Self.notReplicated("link_lost")])
        XCTAssertEqual(metrics["celeris_frontend_wait_seconds_count"], 1)

        // Back: the retry with the same id answers 200 and the replica holds both messages.
        replica.resume()
        let replicaClient = try replica.client()
        XCTAssertTrue(eventually(timeout: 10) { (try? replicaClient.command("LLEN", "celery").integer) == 1 })
        let retry = try HTTPClient.request(
            "POST", port: port, path: "/tasks", body: "{\"task_id\": \"\(id)\", \"args\": [0]}")
        XCTAssertEqual(retry.status, 200, retry.text)
        XCTAssertEqual(try taskId(retry), id)
        XCTAssertEqual(try queuedIds(replicaClient), [id, id])
        XCTAssertEqual(try replicaClient.keyspace(), try masterClient.keyspace())
        XCTAssertEqual(try Prometheus.scrape(port: port)[Self.notReplicated("too_few_replicas")], 1)
    }

    /// The refusal counter's sample for one `reason`.
    static func notReplicated(_ reason: String) -> String {
        "celeris_frontend_enqueue_not_replicated_total{reason=\"\(reason)\"}"
    }

    /// Redis blocks a connection while its `WAIT` waits: WAITs sent one per batch would queue
    /// behind each other on the frontend's one commands link, each request answered only after
    /// every earlier `WAIT` timed out. At most one is in flight; the requests arriving meanwhile
    /// share the next, so each is answered within two timeouts, and few WAITs are sent.
    func testStalledReplicaAnswersEveryRequestWithinTwoTimeouts() throws {
        let timeoutMs = 300
        try startFrontend(["--durable-enqueue", "1", "--durable-timeout-ms", "\(timeoutMs)", "--loops", "1"])
        let masterClient = try master.client()
        let port = port
        replica.pause()
        defer { replica.resume() }
        // One POST every 50 ms for 1.5 s, each on its own connection: (sent, answered, status, error).
        let count = 30
        let results = LockedBox<[(sent: Double, answered: Double, status: Int, error: String?)]>([])
        let group = DispatchGroup()
        let start = Date()
        for i in 0..<count {
            group.enter()
            // A thread each (GCD's pool would run the blocking requests a few at a time, not on schedule).
            Thread.detachNewThread {
                defer { group.leave() }
                Thread.sleep(until: start.addingTimeInterval(0.05 * Double(i)))
                let sent = Date().timeIntervalSince1970
                let request =
                    "POST /tasks?task_length=0 HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Length: 0\r\n\r\n"
                let r = try? { () throws -> HTTPResponse in
                    let s = try RawSocket(port: port, timeout: 30)
                    try s.send(request)
                    return try s.readResponse()
                }()
                let answered = Date().timeIntervalSince1970
                results.modify {
                    $0.append((sent, answered, r?.status ?? 0, r?.json?["error"]?.stringValue ?? r?.text))
                }
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        let all = results.get()
        XCTAssertEqual(all.count, count)
        let limit = 2 * Double(timeoutMs) / 1000 + 0.5
        let slowest = all.map { $0.answered - $0.sent }.max() ?? 0
        print("\(count) POSTs, replica stopped, T=\(timeoutMs) ms: slowest answer \(slowest) s")
        for a in all {
            XCTAssertEqual(a.status, 503, a.error ?? "")
            XCTAssertEqual(a.error, "not_replicated")
            XCTAssertLessThanOrEqual(a.answered - a.sent, limit, "answered \(a.answered - a.sent) s after it was sent")
        }
        let waits = try calls(masterClient, "wait")
        print("\(count) POSTs: \(waits) WAIT(s)")
        XCTAssertGreaterThanOrEqual(waits, 1)
        XCTAssertLessThanOrEqual(waits, count / 3, "requests arriving while a WAIT is owed must share the next one")
        XCTAssertEqual(try calls(masterClient, "lpush"), count)
        XCTAssertEqual(try Prometheus.scrape(port: port)[Self.notReplicated("too_few_replicas")], Double(count))
    }

    /// The link dropped while `WAIT` was owed: 503 `not_replicated` (the task may or may not be
    /// queued), counted with `reason="link_lost"`, and the `WAIT` still timed.
    func testLinkLostWhileWaitIsOwedIsRefusedAndCounted() throws {
        try startFrontend(["--durable-enqueue", "1", "--durable-timeout-ms", "1000", "--loops", "1"])
        let masterClient = try master.client()
        replica.pause()
        defer { replica.resume() }
        let s = try RawSocket(port: port, timeout: 10)
        try s.send("POST /tasks?task_length=0 HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Length: 0\r\n\r\n")
        XCTAssertTrue(
            eventually(timeout: 5, interval: 0.005) {
                (try? masterClient.command("INFO", "clients").text)?.contains("blocked_clients:1") ?? false
            })
        // The frontend's links (and not this one): the WAIT's link drops before WAIT answers.
        XCTAssertGreaterThanOrEqual(
            try XCTUnwrap(try masterClient.command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").integer), 1)
        let r = try s.readResponse()
        XCTAssertEqual(r.status, 503, r.text)
        XCTAssertEqual(r.json?["error"]?.stringValue, "not_replicated")
        XCTAssertTrue(r.text.contains("dropped before WAIT answered"), r.text)
        let metrics = try Prometheus.scrape(port: port)
        XCTAssertEqual(metrics[Self.notReplicated("link_lost")], 1)
        XCTAssertNil(metrics[Self.notReplicated("too_few_replicas")])
        XCTAssertEqual(metrics["celeris_frontend_wait_seconds_count"], 1)
    }

    /// SIGTERM while pushes wait on their WAIT: the graceful shutdown answers them before it exits.
    func testShutdownAnswersRequestsWaitingOnTheirWait() throws {
        try startFrontend(["--durable-enqueue", "1", "--durable-timeout-ms", "1000", "--loops", "1"])
        let masterClient = try master.client()
        replica.pause()
        defer { replica.resume() }
        let request = "POST /tasks?task_length=0 HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Length: 0\r\n\r\n"
        let sockets = try (0..<5).map { _ in try RawSocket(port: port, timeout: 10) }
        for s in sockets { try s.send(request) }
        // Every push is in the master's queue; their WAIT is owed for up to a second.
        XCTAssertTrue(
            eventually(timeout: 5, interval: 0.005) { (try? masterClient.command("LLEN", "celery").integer) == 5 })
        let frontend = try XCTUnwrap(frontend)
        frontend.process.terminate()
        for s in sockets {
            let r = try s.readResponse()
            XCTAssertEqual(r.status, 503, r.text)
            XCTAssertEqual(r.json?["error"]?.stringValue, "not_replicated")
        }
        XCTAssertTrue(eventually(timeout: 10) { !frontend.isRunning }, frontend.log)
        XCTAssertEqual(frontend.process.terminationStatus, 0, frontend.log)
    }

    func testOffByDefaultSendsNoWait() throws {
        try startFrontend([])
        let masterClient = try master.client()
        let replicaClient = try replica.client()
        var ids: [String] = []
        for _ in 0..<10 {
            let r = try HTTPClient.request("POST", port: port, path: "/tasks?task_length=0")
            XCTAssertEqual(r.status, 200, r.text)
            ids.append(try taskId(r))
        }
        XCTAssertEqual(try calls(masterClient, "wait"), 0)
        XCTAssertFalse((try masterClient.command("INFO", "commandstats").text ?? "").contains("cmdstat_wait"))
        XCTAssertEqual(try calls(masterClient, "lpush"), 10)
        XCTAssertEqual(try queuedIds(masterClient), ids.reversed())
        XCTAssertEqual(try masterClient.keys(), ["celery", "_kombu.binding.celery", "_kombu.binding_permanent.celery"])
        XCTAssertTrue(eventually { (try? replicaClient.keyspace()) == (try? masterClient.keyspace()) })
    }

    func testEnvironmentTurnsItOnAndATimeoutOverTheRedisTimeoutIsRefused() throws {
        let bad = try Spawned(
            try TestPaths.executable("celeris-frontend"),
            [
                "-b", master.url, "--host", "127.0.0.1", "--port", "\(freePort())", "--durable-enqueue", "1",
                "--durable-timeout-ms", "5000", "--redis-timeout-ms", "5000",
            ], name: "frontend-bad")
        XCTAssertTrue(eventually(timeout: 10) { !bad.isRunning })
        XCTAssertNotEqual(bad.process.terminationStatus, 0)
        XCTAssertTrue(bad.log.contains("--durable-timeout-ms (5000) must be below --redis-timeout-ms (5000)"), bad.log)

        port = freePort()
        let p = try Spawned(
            try TestPaths.executable("celeris-frontend"),
            ["-b", master.url, "--host", "127.0.0.1", "--port", "\(port)", "--durable-timeout-ms", "200"],
            env: ["CELERIS_DURABLE_ENQUEUE": "1"], name: "frontend-env")
        frontend = p
        XCTAssertTrue(
            eventually(timeout: 10) { (try? HTTPClient.request("GET", port: port, path: "/health").status) == 200 },
            p.log)
        let masterClient = try master.client()
        replica.pause()
        defer { replica.resume() }
        let r = try HTTPClient.request("POST", port: port, path: "/tasks?task_length=0")
        XCTAssertEqual(r.status, 503, r.text)
        XCTAssertEqual(r.json?["error"]?.stringValue, "not_replicated")
        XCTAssertEqual(try calls(masterClient, "wait"), 1)
        XCTAssertEqual(try queuedIds(masterClient), [try taskId(r)])
    }
}
