import FastCore
import Foundation
import XCTest

/// What `celeris-beat` sends runs on a Python Celery 5.7 worker and on a Celeris worker: each
/// scheduled message (queued before the worker starts, and one sent while it runs) ends with
/// its result in the backend, and every message sent runs exactly once.
final class BeatWorkersTests: RedisTestCase {
    let queue = "beatq"
    let priority = 5
    let entry = "add-every-second"
    /// `add(2, y=3)` every second, on a queue of its own, at priority 5.
    let scheduleText = #"""
        {"beat_schedule": {"add-every-second": {"task": "add", "schedule": 1, "args": [2], "kwargs": {"y": 3},
         "options": {"queue": "beatq", "priority": 5, "expires": 120}}}}
        """#

    func testPythonCeleryWorkerRunsScheduledMessages() throws {
        try runsScheduledMessages(spawn: { try PythonWorker.spawn(redis: redis, queues: queue) }) { ids, sent in
            // The fixture app counts each task id's successes: one per id, as many ids as messages sent.
            for id in ids { XCTAssertEqual(try client.pythonSuccesses(id), 1, "the Python worker ran \(id) once") }
            XCTAssertTrue(
                try eventually(timeout: 10) {
                    (try client.command("HLEN", PythonWorker.succeededKey).integer ?? 0) >= sent
                })
            XCTAssertEqual(try client.command("HLEN", PythonWorker.succeededKey).integer, sent)
        }
    }

    func testCelerisWorkerRunsScheduledMessages() throws {
        var worker: MetricsWorker?
        let spawn = {
            let w = try MetricsWorker(redis: self.redis, extra: ["-Q", self.queue])
            worker = w
            return w.process
        }
        try runsScheduledMessages(spawn: spawn) { _, sent in
            let w = try XCTUnwrap(worker)
            // As many successes of `add` as messages sent, each of which has its SUCCESS result:
            // each one ran exactly once.
            XCTAssertTrue(try eventually(timeout: 10) { try w.succeeded("add") >= sent }, w.log)
            XCTAssertEqual(try w.succeeded("add"), Int(sent))
            XCTAssertEqual(try w.received("add"), Int(sent))
            XCTAssertEqual(try client.command("HLEN", PythonWorker.succeededKey).integer, 0, "no Python worker ran")
        }
    }

    /// Run a scheduler until three messages wait on the queue, start the worker `spawn` makes,
    /// wait for a message sent once it is up, stop the scheduler, and check that every message
    /// sent has a SUCCESS result and the ids' results are `5`; then, the worker still running,
    /// `check` gets the ids seen and how many messages were sent in all.
    func runsScheduledMessages(
        spawn: () throws -> Spawned, check: (_ ids: [String], _ sent: Int64) throws -> Void
    ) throws {
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
        // A send after the worker is up: the entry's count passes the count taken then.
        let countWhenUp = try XCTUnwrap(try client.beatEntryField(entry, "count"))
        var live: [String?] = []
        XCTAssertTrue(
            try eventually(timeout: 10) {
                live =
                    try client.command("HMGET", BeatProcess.entryKey(entry), "count", "task_id").elements?.map(
                        \.text) ?? []
                return (live.first.flatMap { $0 }.flatMap { Int64($0) } ?? 0) > countWhenUp
            }, "a send after the worker started")
        let liveId = try XCTUnwrap(live.count == 2 ? live[1] : nil, "\(live)")
        XCTAssertFalse(queued.contains { $0.id == liveId })
        beat.terminate()
        XCTAssertEqual(beat.exitStatus(), 0, beat.log)
        let sent = try XCTUnwrap(try client.beatEntryField(entry, "count"))

        let ids = queued.map(\.id) + [liveId]
        let done = try eventually(timeout: 30) {
            try client.resultCount() >= sent && ids.allSatisfy { try result($0)?["status"] == "SUCCESS" }
        }
        XCTAssertTrue(done, "worker log:\n\(worker.log)")
        XCTAssertEqual(try client.resultCount(), sent, "one result per message sent")
        for id in ids { XCTAssertEqual(try result(id)?["result"], 5, id) }
        try check(ids, sent)
    }
}
