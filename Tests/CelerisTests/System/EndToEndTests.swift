import FastCore
import Foundation
import XCTest

/// The tutorial's whole path with Celeris alone: POST /tasks, live updates on
/// /ws to a real WebSocket client, final status over HTTP.
final class EndToEndTests: XCTestCase {
    func testWebSocketClientSeesEveryProgressUpdateInOrder() throws {
        let redis = try RedisServer()
        let port = freePort()
        let frontend = try CelerisProcess.frontend(redis: redis, port: port)
        let worker = try CelerisProcess.worker(redis: redis, step: "0.05")
        let r = try resultLine(try runPython("ws_client.py", ["\(port)", "4"]))
        let updates = r["updates"]?.arrayValue ?? []
        XCTAssertEqual(updates.map { $0["state"] }, ["PROGRESS", "PROGRESS", "PROGRESS", "PROGRESS", "SUCCESS"])
        XCTAssertEqual(updates.map { $0["progress"] }, [0, 1, 2, 3, 4])
        XCTAssertEqual(
            r["status"], ["status": "Completed", "state": "SUCCESS", "result": ["status": "Task completed"]])
        // The tutorial's server logs what a client sends: that line is the behaviour here.
        XCTAssertTrue(
            eventually(timeout: 5) { frontend.log.contains("Received WebSocket data: hello from the test client") },
            frontend.log)
        XCTAssertTrue(worker.isRunning)
    }

    func testStatusShowsProgressWhileRunningAndPendingForUnknownIds() throws {
        let redis = try RedisServer()
        let port = freePort()
        let frontend = try CelerisProcess.frontend(redis: redis, port: port)
        let worker = try CelerisProcess.worker(redis: redis, step: "0.3")
        XCTAssertEqual(
            try HTTPClient.request("GET", port: port, path: "/status/does-not-exist").json,
            ["status": "Pending...", "state": "PENDING"])
        let id = try XCTUnwrap(
            try HTTPClient.request("POST", port: port, path: "/tasks", body: #"{"task": "create_task", "args": [3]}"#)
                .json?["task_id"]?.stringValue)
        var progress: JSON?
        XCTAssertTrue(
            try eventually(timeout: 10) {
                let s = try HTTPClient.request("GET", port: port, path: "/status/\(id)").json
                if s?["state"] == "PROGRESS" { progress = s }
                return s?["state"] == "SUCCESS"
            })
        XCTAssertEqual(progress?["status"], "PROGRESS")
        XCTAssertNotNil(progress?["meta"]?["progress"]?.intValue)
        XCTAssertTrue(frontend.isRunning && worker.isRunning)
    }

    /// A garbage queue entry is dead-lettered once, and the worker goes on.
    func testWorkerBinaryDeadLettersGarbageAndKeepsRunning() throws {
        let redis = try RedisServer()
        let worker = try MetricsWorker(redis: redis)
        let client = try redis.client()
        try client.command("LPUSH", "celery", "\u{01}garbage\u{ff}")
        var producer = TaskProducer()
        let good = TaskMessage(task: "add", args: [40, 2])
        _ = try client.pipeline(producer.sendCommands(for: good))
        XCTAssertTrue(
            try eventually(timeout: 10) { try client.command("EXISTS", ResultRecord.key(good.id)).integer == 1 })
        XCTAssertEqual(try client.command("LLEN", "celeris.dead_letter").integer, 1)
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
        let dead = try JSONParser.parse(try XCTUnwrap(try client.command("LINDEX", "celeris.dead_letter", "0").bytes))
        XCTAssertEqual(dead["message"], "\u{01}garbage\u{ff}")
        XCTAssertEqual(dead["queue"], "celery")
        // Nothing but the good task was run.
        XCTAssertTrue(try eventually(timeout: 5) { try worker.succeeded("add") == 1 }, worker.log)
        XCTAssertTrue(worker.isRunning)
    }
}
