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
    }
}

/// `--durable-enqueue N`: POST /tasks and /process answer 200 only once N replicas hold the
/// task (one Redis WAIT per loop turn after that turn's pushes), 503 `not_replicated` otherwise;
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
        XCTAssertNil(metrics["celeris_frontend_enqueue_not_replicated_total"])
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
        XCTAssertEqual(try Prometheus.scrape(port: port)["celeris_frontend_enqueue_not_replicated_total"], 1)

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
        XCTAssertEqual(try Prometheus.scrape(port: port)["celeris_frontend_enqueue_not_replicated_total"], 1)
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
