import FastCore
import Foundation
import XCTest

/// Celery's inspect/control commands and event receiver against a Celeris worker.
final class RemoteControlTests: RedisTestCase {
    func probe(_ args: [String]) throws -> JSON {
        try resultLine(try runPython("control_probe.py", [redis.url] + args))
    }

    func testInspectPingActiveQueuesRegisteredAndStats() throws {
        let worker = try CelerisProcess.worker(
            redis: redis, extra: ["-n", "w1@test", "-Q", "celery,extract_queue", "-c", "3"])
        let r = try probe(["inspect"])
        XCTAssertEqual(r["ping"], ["w1@test": ["ok": "pong"]])
        XCTAssertEqual(
            r["active_queues"]?["w1@test"]?.arrayValue?.compactMap { $0["name"] }, ["celery", "extract_queue"])
        XCTAssertEqual(
            r["registered"]?["w1@test"],
            [
                "add", "compare_data_task", "create_task", "extract_data_task", "fetch_documents_task", "noop",
                "noop_async", "tsum",
            ])
        XCTAssertEqual(r["stats"]?["w1@test"]?["pool"]?["max-concurrency"], 3)
        XCTAssertEqual(r["stats"]?["w1@test"]?["broker"]?["transport"], "redis")
        XCTAssertEqual(r["conf"]?["w1@test"]?["broker_url"], .string(redis.endpoint.description))
        XCTAssertTrue(worker.isRunning)
    }

    /// `celery control time_limit create_task --soft 0.3 --hard 5`: the next run is stopped by its soft limit.
    func testTimeLimitSetRemotely() throws {
        let worker = try CelerisProcess.worker(redis: redis, extra: ["-n", "w1@test"], step: "0.1")
        let r = try probe(["time_limit", "create_task", "0.3", "5"])
        XCTAssertEqual(r[0]?["w1@test"], ["ok": "time limits set successfully"])
        let m = TaskMessage(task: "create_task", args: [30])
        try enqueue([m])
        XCTAssertTrue(
            try eventually(timeout: 10) {
                try self.result(m.id)?["result"]?["exc_type"] == "SoftTimeLimitExceeded"
            }, worker.log)
    }

    func testRevokeBeforeAndDuringExecution() throws {
        let worker = try MetricsWorker(redis: redis, extra: ["-n", "w1@test", "-c", "1"], step: "0.2")
        let running = TaskMessage(task: "create_task", args: [50])
        let waiting = TaskMessage(task: "add", args: [1, 2])
        try enqueue([running, waiting])
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(running.id) != nil })
        let r1 = try probe(["revoke", waiting.id])
        XCTAssertEqual(r1[0]?["w1@test"]?["ok"], .string("tasks \(waiting.id) flagged as revoked"))
        let r2 = try probe(["revoke", running.id, "terminate"])
        XCTAssertNotNil(r2[0]?["w1@test"]?["ok"])
        func state(_ id: String) throws -> JSON? { try result(id)?["status"] }
        XCTAssertTrue(
            try eventually(timeout: 5) { try state(running.id) == "REVOKED" && state(waiting.id) == "REVOKED" })
        // The waiting one was dropped unrun (counted revoked, never succeeded); the running one was stopped.
        XCTAssertTrue(try eventually(timeout: 5) { try worker.count("revoked", "add") == 1 }, worker.log)
        XCTAssertEqual(try worker.succeeded("add"), 0)
        XCTAssertEqual(try worker.succeeded("create_task"), 0)
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
    }

    /// With -E, Celery's event receiver (Flower's State model) sees the worker
    /// alive and a task go from received to SUCCESS.
    func testEventsFeedFlowersStateModel() throws {
        let worker = try CelerisProcess.worker(redis: redis, extra: ["-n", "w1@test", "-E"])
        let m = TaskMessage(task: "add", args: [2, 3])
        let r = try captureEvents(seconds: 5, enqueuing: m)
        for t in ["task-received", "task-started", "task-succeeded", "worker-heartbeat"] {
            XCTAssertTrue(r["types"]?.arrayValue?.contains(.string(t)) ?? false, "missing \(t): \(r)")
        }
        XCTAssertEqual(r["workers"]?["w1@test"]?["alive"], true)
        XCTAssertEqual(r["workers"]?["w1@test"]?["freq"], 2.0)
        XCTAssertEqual(r["task"]?["state"], "SUCCESS")
        XCTAssertEqual(r["task"]?["name"], "add")
        XCTAssertEqual(r["task"]?["result"], "5")
        XCTAssertEqual(r["task"]?["worker"], "w1@test")
        XCTAssertEqual(r["received"]?[0]?["args"], "(2, 3)")
        XCTAssertTrue(worker.isRunning)
    }

    /// Autoscale grows from MIN to MAX under a burst and returns to MIN after idling.
    func testAutoscaleFollowsABurstUpAndBackDown() throws {
        let worker = try CelerisProcess.worker(
            redis: redis, extra: ["-n", "w1@test", "--autoscale", "4,1", "--autoscale-keepalive", "1"], step: "0.3")
        func size() throws -> Int64? { try probe(["stats"])["w1@test"]?["pool"]?["autoscaler"]?["qty"]?.intValue }
        XCTAssertEqual(try size(), 1)
        try enqueue((0..<12).map { _ in TaskMessage(task: "create_task", args: [3]) })
        XCTAssertTrue(try eventually(timeout: 15, interval: 0.3) { try size() == 4 }, worker.log)
        XCTAssertTrue(
            try eventually(timeout: 30, interval: 0.5) {
                try self.client.command("LLEN", "celery").integer == 0 && size() == 1
            },
            worker.log)
    }

    /// inspect active / reserved / scheduled, control rate_limit, then control shutdown (warm).
    func testInspectQueuesRateLimitAndRemoteShutdown() throws {
        // Celery's fixed window (4 per slot): the worker reserves the waiting task while one runs.
        let worker = try CelerisProcess.worker(
            redis: redis, extra: ["-n", "w1@test", "-c", "1", "--prefetch-multiplier", "4"], step: "0.2")
        let running = TaskMessage(task: "create_task", args: [20])
        let waiting = TaskMessage(task: "add", args: [1, 1])
        var later = TaskMessage(task: "add", args: [2, 2])
        later.eta = CeleryTime.isoformat(CeleryTime.now() + 60)
        try enqueue([running, waiting, later])
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(running.id) != nil })
        let q = try probe(["queues"])
        XCTAssertEqual(q["active"]?["w1@test"]?.arrayValue?.map { $0["id"] }, [.string(running.id)])
        XCTAssertEqual(q["active"]?["w1@test"]?[0]?["args"], [20])
        XCTAssertEqual(q["reserved"]?["w1@test"]?.arrayValue?.map { $0["id"] }, [.string(waiting.id)])
        XCTAssertEqual(q["scheduled"]?["w1@test"]?[0]?["request"]?["id"], .string(later.id))
        XCTAssertEqual(
            try probe(["rate_limit", "add", "10/m"])[0]?["w1@test"], ["ok": "new rate limit set successfully"])
        XCTAssertEqual(try probe(["rate_limit", "nope", "10/m"])[0]?["w1@test"], ["error": "unknown task"])
        _ = try probe(["shutdown"])
        XCTAssertTrue(eventually(timeout: 15) { !worker.isRunning }, worker.log)
        // A warm shutdown: a clean exit, the running task finished, the others returned.
        XCTAssertEqual(worker.process.terminationStatus, 0, worker.log)
        XCTAssertEqual(worker.process.terminationReason, .exit)
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 2, "the reserved and the ETA task went back")
        XCTAssertEqual(try result(running.id)?["status"], "SUCCESS")
    }
}
