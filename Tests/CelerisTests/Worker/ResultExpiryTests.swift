@testable import FastCore
import Foundation
import XCTest

/// How long result records live: a task's `resultExpires`, else the worker's
/// `--result-expires` (default 86400, Celery's `result_expires`); 0 stores them with no expiry.
final class ResultExpiryTests: RedisTestCase {
    /// The seconds left on `id`'s record (-1: no expiry, -2: no record).
    func ttl(_ id: String) throws -> Int64 { try XCTUnwrap(try client.command("TTL", ResultRecord.key(id)).integer) }

    /// `id`'s record has `range` seconds left.
    func assertTTL(
        _ id: String, _ range: ClosedRange<Int64>, _ note: String = "", file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        let left = try ttl(id)
        XCTAssertTrue(range.contains(left), "TTL \(left), expected \(range) \(note)", file: file, line: line)
    }

    func waitForSuccess(_ messages: [TaskMessage]) throws {
        XCTAssertTrue(
            try eventually { try messages.allSatisfy { try self.result($0.id)?["status"] == "SUCCESS" } },
            "all succeeded")
    }

    /// With nothing set, a record lives a day, as Celery's.
    func testWorkerDefaultIsOneDay() throws {
        let worker = InProcessWorker(redis: redis)
        let m = TaskMessage(task: "add", args: [2, 3])
        try enqueue([m])
        try waitForSuccess([m])
        worker.stop()
        try assertTTL(m.id, 86390...86400)
    }

    /// The worker's setting covers every record, a task's own value wins, and 0 (either way)
    /// stores the record with no expiry (SET, as Celery with `result_expires=0`). A task's
    /// PROGRESS records live as long as its result; so does the FAILURE of a task the worker
    /// does not know (it has no options: the worker's setting).
    func testTaskExpiryWinsOverTheWorkersAndZeroNeverExpires() throws {
        let progressed = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let worker = InProcessWorker(
            redis: redis,
            register: { r in
                r.register("short", options: TaskOptions(resultExpires: 120)) { _ in "short" }
                r.register("forever", options: TaskOptions(resultExpires: 0)) { _ in "forever" }
                r.register("plain") { _ in "plain" }
                r.register("invalid", options: TaskOptions(resultExpires: -5)) { _ in "invalid" }
                r.register("reporting", options: TaskOptions(resultExpires: 300)) { ctx in
                    ctx.updateState(.progress, meta: ["done": 1])
                    progressed.signal()
                    release.wait()
                    return "reported"
                }
            }, configure: { $0.resultExpires = 500 })
        let short = TaskMessage(task: "short")
        let forever = TaskMessage(task: "forever")
        let plain = TaskMessage(task: "plain")
        let invalid = TaskMessage(task: "invalid")
        let unknown = TaskMessage(task: "no_such_task")
        let reporting = TaskMessage(task: "reporting")
        try enqueue([short, forever, plain, invalid, unknown, reporting])
        XCTAssertEqual(progressed.wait(timeout: .now() + 10), .success)
        XCTAssertTrue(try eventually { try self.result(reporting.id)?["status"] == "PROGRESS" })
        try assertTTL(reporting.id, 290...300)
        release.signal()
        try waitForSuccess([short, forever, plain, invalid, reporting])
        XCTAssertTrue(try eventually { try self.result(unknown.id)?["status"] == "FAILURE" })
        worker.stop()
        try assertTTL(short.id, 110...120)
        XCTAssertEqual(try ttl(forever.id), -1)
        try assertTTL(plain.id, 490...500)
        try assertTTL(invalid.id, 490...500)
        try assertTTL(unknown.id, 490...500)
        try assertTTL(reporting.id, 290...300)
        XCTAssertEqual(try result(forever.id)?["result"], "forever")
    }

    /// Records of a task that did not run to its end (REVOKED as expired, TimeLimitExceeded
    /// past its hard limit) live as long as the task's `resultExpires` says, as its run's
    /// records do. Before, they took the worker's `--result-expires`.
    func testNotRunRecordsFollowTheTasksExpiry() throws {
        let clock = ManualClock(CeleryTime.now())
        let release = DispatchSemaphore(value: 0)
        let started = LockedCounter()
        defer { release.signal() }
        let worker = InProcessWorker(
            redis: redis, clock: clock,
            register: { r in
                r.register("hourly", options: TaskOptions(resultExpires: 3600)) { _ in "ran" }
                r.register("stuck_hourly", options: TaskOptions(timeLimit: 10, resultExpires: 3600)) { _ in
                    started.increment()
                    release.wait()
                    return "late"
                }
            },
            configure: {
                $0.resultExpires = 500
                $0.maxAbandonedThreads = 0
            })
        var expired = TaskMessage(task: "hourly")
        expired.expires = CeleryTime.isoformat(clock.now() - 10)
        let stuck = TaskMessage(task: "stuck_hourly")
        try enqueue([expired, stuck])
        XCTAssertTrue(try eventually { try self.result(expired.id)?["status"] == "REVOKED" })
        XCTAssertTrue(eventually { started.value == 1 })
        clock.advance(10.5)
        XCTAssertTrue(try eventually { try self.result(stuck.id)?["result"]?["exc_type"] == "TimeLimitExceeded" })
        try assertTTL(expired.id, 3590...3600, "revoked")
        try assertTTL(stuck.id, 3590...3600, "time limit")
        release.signal()
        worker.stop()
    }

    /// A chord's keys and the records its join writes (the body's PROGRESS, a ChordError)
    /// follow the worker's `--result-expires`, not a fixed day.
    func testChordKeysAndRecordsFollowTheWorkersExpiry() throws {
        let release = DispatchSemaphore(value: 0)
        let started = LockedCounter()
        defer { release.signal() }
        let worker = InProcessWorker(
            redis: redis, concurrency: 2,
            register: { r in
                r.register("gated") { _ in
                    started.increment()
                    release.wait()
                    return 1
                }
                r.register("boom") { _ in throw TaskFailure(type: "ValueError", message: "boom") }
            }, configure: { $0.resultExpires = 300 })
        func send(_ chord: Canvas) throws -> (gid: String, bodyId: String) {
            let (commands, bodyId) = chord.sendCommands()
            let gid = try XCTUnwrap(
                commands.first { $0.first == "SET" && $0.count > 1 && $0[1].hasSuffix(".s") }?[1]
                    .dropFirst(Canvas.setPrefix.count).dropLast(2))
            for reply in try client.pipeline(commands) { XCTAssertNil(reply.errorMessage) }
            return (String(gid), bodyId)
        }
        let body = Signature("tsum", options: ["celeris_progress": true])
        let (gid, bodyId) = try send(.chord([.task(Signature("add", args: [1, 1])), .task(Signature("gated"))], body))
        XCTAssertTrue(
            try eventually {
                try started.value == 1
                    && self.client.command("ZCARD", "\(Canvas.setPrefix)\(gid).j").integer == 1
                    && self.result(bodyId)?["status"] == "PROGRESS"
            }, "one header counted, one running")
        for suffix in [".j", ".s", ".d"] {
            let left = try XCTUnwrap(try client.command("TTL", "\(Canvas.setPrefix)\(gid)\(suffix)").integer)
            XCTAssertTrue((290...300).contains(left), "\(suffix) TTL \(left)")
        }
        try assertTTL(bodyId, 290...300, "the body's PROGRESS")
        let (_, failedBodyId) = try send(.chord([.task(Signature("boom"))], Signature("tsum")))
        XCTAssertTrue(try eventually { try self.result(failedBodyId)?["result"]?["exc_type"] == "ChordError" })
        try assertTTL(failedBodyId, 290...300, "the ChordError")
        release.signal()
        XCTAssertTrue(try eventually { try self.result(bodyId)?["status"] == "SUCCESS" })
        worker.stop()
    }

    /// `--result-expires 0` on the worker: records never expire, and Python Celery reads them.
    func testZeroOnTheWorkerStoresWithoutExpiryAndPythonReadsIt() throws {
        let worker = InProcessWorker(redis: redis, configure: { $0.resultExpires = 0 })
        let m = TaskMessage(task: "add", args: [20, 22])
        try enqueue([m])
        try waitForSuccess([m])
        worker.stop()
        XCTAssertEqual(try ttl(m.id), -1)
        let read = try resultLine(try runPython("result_probe.py", [redis.url, m.id]))
        XCTAssertEqual(read[m.id], ["state": "SUCCESS", "result": 42])
    }

    /// The celeris-worker binary's `--result-expires`: its value on every record; 0: none;
    /// a negative value is refused at start.
    func testResultExpiresFlag() throws {
        let worker = try CelerisProcess.worker(redis: redis, extra: ["--result-expires", "300"])
        let m = TaskMessage(task: "add", args: [1, 2])
        try enqueue([m])
        try waitForSuccess([m])
        worker.stop()
        try assertTTL(m.id, 290...300)
        let never = try CelerisProcess.worker(redis: redis, extra: ["--result-expires", "0"])
        let n = TaskMessage(task: "add", args: [3, 4])
        try enqueue([n])
        try waitForSuccess([n])
        never.stop()
        XCTAssertEqual(try ttl(n.id), -1)
        let refused = try Spawned(
            try TestPaths.executable("celeris-worker"), ["-b", redis.url, "--result-expires", "-1"], name: "worker")
        refused.process.waitUntilExit()
        XCTAssertNotEqual(refused.process.terminationStatus, 0)
        XCTAssertTrue(refused.log.contains("--result-expires"), refused.log)
    }

    /// The record's RESP: SETEX with its own expiry, SET when it has none (the bytes as `storeCommands()`).
    func testStoreCommandsFollowTheRecordsExpiry() {
        var record = ResultRecord(taskId: "t", state: .success, result: 1, dateDone: 1)
        for (expires, head) in [
            (86400, ["SETEX", "celery-task-meta-t", "86400"]), (42, ["SETEX", "celery-task-meta-t", "42"]),
            (0, ["SET", "celery-task-meta-t"]),
        ] {
            record.expires = expires
            let commands = record.storeCommands()
            XCTAssertEqual(Array(commands[0].dropLast()), head)
            var expected: [UInt8] = []
            for c in commands { RESP.append(c, to: &expected) }
            var out: [UInt8] = []
            record.appendStoreCommands(to: &out)
            XCTAssertEqual(out, expected, "expires \(expires)")
        }
        XCTAssertEqual(ResultRecord.expiry(seconds: 0), 0)
        XCTAssertEqual(ResultRecord.expiry(seconds: 0.25), 1)
        XCTAssertEqual(ResultRecord.expiry(seconds: 90.9), 90)
        XCTAssertEqual(ResultRecord.expiry(seconds: 1e300), ResultRecord.maxExpirySeconds)
        XCTAssertNil(ResultRecord.expiry(seconds: -1))
        XCTAssertNil(ResultRecord.expiry(seconds: .nan))
        XCTAssertNil(ResultRecord.expiry(seconds: .infinity))
    }
}
