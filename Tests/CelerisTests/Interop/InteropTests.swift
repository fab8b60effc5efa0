import FastCore
import Foundation
import XCTest

/// Real Python Celery 5.7 on both sides of Celeris.
final class InteropTests: XCTestCase {
    /// Python's `send_task` → Celeris worker → Python's `AsyncResult.get()`.
    func testPythonClientGetsResultsFromCelerisWorker() throws {
        let redis = try RedisServer()
        // Steps of 50 ms: the PROGRESS states must not all be published before the client subscribes.
        let worker = try CelerisProcess.worker(redis: redis, step: "0.05")
        let out = try runPython("interop_send.py", [redis.url])
        let r = try resultLine(out)
        XCTAssertEqual(r["add"], 5)
        XCTAssertEqual(r["add_state"], "SUCCESS")
        XCTAssertEqual(r["create_task"], ["status": "Task completed"])
        let states = r["create_task_states"]?.arrayValue ?? []
        XCTAssertEqual(
            states.filter { $0[0] == "PROGRESS" }.map { $0[1]?["progress"] }, [0, 1, 2],
            "PROGRESS seen by Python: \(states)")
        XCTAssertEqual(states.last?[0], "SUCCESS")
        XCTAssertEqual(r["unknown"], ["NotRegistered", "'no_such_task'"])
        XCTAssertTrue(worker.isRunning)
        let client = try redis.client()
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
    }

    /// Celeris frontend → Python Celery worker → GET /status on the frontend.
    func testCelerisFrontendFeedsPythonWorker() throws {
        let redis = try RedisServer()
        let port = freePort()
        let frontend = try CelerisProcess.frontend(redis: redis, port: port)
        let python = try PythonWorker.spawn(redis: redis, env: ["FIXTURE_STEP_SECONDS": "0.05"])

        let add = try HTTPClient.request("POST", port: port, path: "/tasks", body: #"{"task": "add", "args": [2, 3]}"#)
        XCTAssertEqual(add.status, 200, add.text)
        let addId = try XCTUnwrap(add.json?["task_id"]?.stringValue)
        let create = try HTTPClient.request("POST", port: port, path: "/tasks?task_length=3")
        XCTAssertEqual(create.status, 200, create.text)
        let createId = try XCTUnwrap(create.json?["task_id"]?.stringValue)

        var seenStates: Set<String> = []
        let done = try eventually(timeout: 30, interval: 0.01) {
            let a = try HTTPClient.request("GET", port: port, path: "/status/\(addId)").json
            let c = try HTTPClient.request("GET", port: port, path: "/status/\(createId)").json
            if let s = c?["state"]?.stringValue { seenStates.insert(s) }
            return a?["status"] == "Completed" && c?["status"] == "Completed"
        }
        XCTAssertTrue(done, "not completed; python worker log:\n\(python.log)")
        XCTAssertEqual(
            try HTTPClient.request("GET", port: port, path: "/status/\(addId)").json,
            ["status": "Completed", "state": "SUCCESS", "result": 5])
        XCTAssertEqual(
            try HTTPClient.request("GET", port: port, path: "/status/\(createId)").json?["result"],
            ["status": "Task completed"])
        XCTAssertTrue(seenStates.contains("PROGRESS"), "states seen: \(seenStates)")
        // Python ran each message once, to success.
        XCTAssertTrue(
            try eventually(timeout: 5) {
                let c = try redis.client()
                return try c.pythonSuccesses(addId) == 1 && c.pythonSuccesses(createId) == 1
            }, python.log)
        // Celery took both messages without a complaint. Its complaints (a message it could
        // not decode and deleted, a warning) leave no state, so the log is read, and the
        // positive check first shows it is the worker's log with both tasks in it.
        let log = python.log
        XCTAssertTrue(log.contains("Task add[\(addId)] succeeded"), log)
        XCTAssertTrue(log.contains("Task create_task[\(createId)] succeeded"), log)
        for bad in ["Traceback", "decode", "ERROR", "Received and deleted unknown message", "WARNING"] {
            XCTAssertFalse(log.contains(bad), "python worker logged '\(bad)':\n\(log)")
        }
        python.stop()
        frontend.stop()
    }
}
