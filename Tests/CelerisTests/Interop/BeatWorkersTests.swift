import FastCore
import Foundation
import XCTest

/// What `celeris-beat` sends runs on a Python Celery 5.7 worker and on a Celeris worker: each
/// scheduled message (queued before the worker starts, and one sent while it runs) ends with
/// its result in the backend.
final class BeatWorkersTests: RedisTestCase {
    let queue = "beatq"
    let priority = 5
    /// `add(2, y=3)` every second, on a queue of its own, at priority 5.
    let scheduleText = #"""
        {"beat_schedule": {"add-every-second": {"task": "add", "schedule": 1, "args": [2], "kwargs": {"y": 3},
         "options": {"queue": "beatq", "priority": 5, "expires": 120}}}}
        """#

    func testPythonCeleryWorkerRunsScheduledMessages() throws {
        let ids = try runsScheduledMessages { try PythonWorker.spawn(redis: redis, queues: queue) }
        for id in ids { XCTAssertEqual(try client.pythonSuccesses(id), 1, "the Python worker ran \(id) once") }
    }

    func testCelerisWorkerRunsScheduledMessages() throws {
        let ids = try runsScheduledMessages { try CelerisProcess.worker(redis: redis, extra: ["-Q", queue]) }
        XCTAssertEqual(try client.command("HLEN", PythonWorker.succeededKey).integer, 0, "no Python worker ran")
        XCTAssertGreaterThanOrEqual(ids.count, 4)
    }

    /// Run a scheduler until three messages wait on the queue, start the worker `spawn` makes,
    /// wait for one more message sent while it runs, and check every sent id's result (`5`).
    /// Returns the ids.
    func runsScheduledMessages(_ spawn: () throws -> Spawned) throws -> [String] {
        let file = try BeatProcess.scheduleFile(scheduleText, removedAfter: self)
        let beat = try BeatProcess(redis: redis, schedule: file, name: "beat@workers")
        defer { beat.stop() }
        XCTAssertTrue(
            try eventually(timeout: 15) {
                try (client.command("LLEN", QueueKeys.listKey(queue: queue, priority: priority)).integer ?? 0) >= 3
            }, beat.log)
        let queued = try client.beatMessages(queue: queue, priority: priority)
        XCTAssertTrue(queued.allSatisfy { $0.task == "add" && $0.isBeatTask && $0.body[0] == [2] }, "\(queued)")

        let worker = try spawn()
        defer { worker.stop() }
        var live: String?
        XCTAssertTrue(
            try eventually(timeout: 10) {
                live = try client.command("HGET", BeatProcess.entryKey("add-every-second"), "task_id").text
                return live.map { id in !queued.contains { $0.id == id } } ?? false
            }, "a send after the worker started")
        let ids = queued.map(\.id) + [try XCTUnwrap(live)]
        let done = try eventually(timeout: 30) { try ids.allSatisfy { try result($0)?["status"] == "SUCCESS" } }
        XCTAssertTrue(done, "worker log:\n\(worker.log)")
        for id in ids { XCTAssertEqual(try result(id)?["result"], 5, id) }
        return ids
    }
}
