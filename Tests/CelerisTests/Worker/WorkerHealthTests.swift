import FastCore
import Foundation
import XCTest

/// The worker's `/health` (readiness) and `/livez` (liveness) beside `/metrics`, from a real
/// worker process against a real redis-server that is stopped and started again.
final class WorkerHealthTests: XCTestCase {
    private func health(_ port: Int) throws -> (status: Int, state: String?, reason: String?) {
        let r = try HTTPClient.request("GET", port: port, path: "/health")
        return (r.status, r.json?["status"]?.stringValue, r.json?["reason"]?.stringValue)
    }

    /// Polls /health until it answers `status`, asserted within `timeout`; its last answer.
    private func health(
        _ port: Int, becomes status: Int, timeout: Double = 10, interval: Double = 0.02, _ worker: Spawned,
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> (status: Int, state: String?, reason: String?) {
        var last = try health(port)
        XCTAssertTrue(
            try eventually(timeout: timeout, interval: interval) {
                last = try health(port)
                return last.status == status
            }, "\(last)\n\(worker.log)", file: file, line: line)
        return last
    }

    func testHealthFollowsTheBrokerLinkAndLivezDoesNot() throws {
        let redis = try RedisServer()
        let port = freePort()
        let worker = try CelerisProcess.worker(
            redis: redis, extra: ["--metrics-port", "\(port)", "--metrics-host", "127.0.0.1", "-Q", "celery,other"])

        var last = try health(port, becomes: 200, worker)
        let ok = try HTTPClient.request("GET", port: port, path: "/health")
        XCTAssertEqual(ok.json?["status"]?.stringValue, "ok")
        XCTAssertNil(ok.json?["reason"])
        XCTAssertEqual(ok.json?["queues"], ["celery", "other"])
        XCTAssertEqual(ok.json?["pool"], 2)
        XCTAssertEqual(try HTTPClient.request("GET", port: port, path: "/livez").status, 200)

        // Redis goes away: readiness fails with the reason, liveness stays 200.
        redis.stop()
        last = try health(port, becomes: 503, timeout: 15, interval: 0.1, worker)
        XCTAssertEqual(last.state, "unavailable")
        XCTAssertTrue(last.reason?.hasPrefix("broker unreachable") ?? false, "\(last)")
        XCTAssertEqual(try HTTPClient.request("GET", port: port, path: "/livez").status, 200)
        XCTAssertTrue(worker.isRunning)

        // Redis back on the same port: ready again once the worker has reconnected.
        try redis.start()
        last = try health(port, becomes: 200, timeout: 15, interval: 0.1, worker)
        XCTAssertEqual(last.state, "ok")
        XCTAssertEqual(try HTTPClient.request("DELETE", port: port, path: "/health").status, 405)
        XCTAssertEqual(try HTTPClient.request("GET", port: port, path: "/other").status, 404)
    }

    func testWarmShutdownFailsReadinessWhileTasksFinish() throws {
        let redis = try RedisServer()
        let client = try redis.client()
        let port = freePort()
        let worker = try CelerisProcess.worker(
            redis: redis, extra: ["--metrics-port", "\(port)", "--metrics-host", "127.0.0.1"], step: "1")
        XCTAssertTrue(try eventually { try health(port).status == 200 }, worker.log)

        // A long task runs, so the warm shutdown lasts until it is stopped cold.
        var producer = TaskProducer()
        let task = TaskMessage(task: "create_task", args: [120])
        _ = try client.pipeline(producer.sendCommands(for: task))
        XCTAssertTrue(
            try eventually(timeout: 15, interval: 0.1) {
                try client.result(task.id)?["status"]?.stringValue == "PROGRESS"
            },
            worker.log)

        kill(worker.process.processIdentifier, SIGTERM)
        let last = try health(port, becomes: 503, timeout: 10, interval: 0.05, worker)
        XCTAssertEqual(last.reason, "shutting down")
        XCTAssertEqual(try HTTPClient.request("GET", port: port, path: "/livez").status, 200)
        XCTAssertTrue(worker.isRunning, "the running task keeps the warm shutdown going")

        kill(worker.process.processIdentifier, SIGQUIT)  // cold: the task's message goes back, the worker exits
        XCTAssertTrue(eventually(timeout: 15, interval: 0.05) { !worker.isRunning }, worker.log)
    }
}

/// The start-up probe behind the worker's "io_uring refused (EPERM): using sockets and read(2)" line.
final class FileReaderProbeTests: XCTestCase {
    func testProbeNamesTheRefusalAndUsesUringFollowsIt() {
        let refused = FileReader(mode: .auto, makeRing: { (nil, EPERM) })
        XCTAssertTrue(refused.usesUring, "not yet tried")
        XCTAssertEqual(refused.probe(), "EPERM")
        XCTAssertFalse(refused.usesUring)
        XCTAssertNil(FileReader(mode: .socket).probe())
        XCTAssertFalse(FileReader(mode: .socket).usesUring)
    }
}
