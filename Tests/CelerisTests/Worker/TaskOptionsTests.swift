@testable import FastCore
import Foundation
import XCTest

/// Celery's task options carried by the protocol or declared by a task.
final class TaskOptionsTests: RedisTestCase {
    /// Nothing held or queued: the keyspace is the results of `results` and the queue's bindings.
    func assertClean(results: [TaskMessage] = [], file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(
            try client.keys(),
            Set(
                results.map { ResultRecord.key($0.id) } + ["_kombu.binding.celery", "_kombu.binding_permanent.celery"]),
            file: file, line: line)
    }

    /// Task id → retries of every message held in `unacked`.
    func heldRetries() throws -> [String: Int] {
        Dictionary(uniqueKeysWithValues: try client.heldMessages().values.map { ($0.id, $0.retries) })
    }

    /// `flaky(n)` fails until it has been retried n times.
    static func registerFlaky(_ r: inout TaskRegistry) {
        r.register("flaky", options: TaskOptions(maxRetries: 3, retryBackoff: 0.05)) { ctx in
            let failures = try ctx.int(0, "failures")
            if ctx.retries < failures {
                throw ctx.retry(because: TaskFailure(type: "ConnectionError", message: "attempt \(ctx.retries)"))
            }
            return .int(Int64(ctx.retries))
        }
    }

    /// Each step the clock is held: the retries wait, held, for their ETA; moving the
    /// clock past the backoff runs them.
    func testRetryWithBackoffEndsInSuccessOrPastMaxRetriesInFailure() throws {
        let clock = ManualClock(CeleryTime.now())
        let worker = InProcessWorker(redis: redis, clock: clock, register: Self.registerFlaky)
        let recovers = TaskMessage(task: "flaky", args: [2])
        let givesUp = TaskMessage(task: "flaky", args: [10])
        try enqueue([recovers, givesUp])
        // Tries 1 and 2 of both: stored as RETRY, their retries held for their ETA (backoff ≤ 0.05 × 2^n).
        for retries in 1...2 {
            XCTAssertTrue(
                try eventually {
                    try self.heldRetries() == [recovers.id: retries, givesUp.id: retries]
                        && self.result(recovers.id)?["status"] == "RETRY"
                        && self.result(givesUp.id)?["status"] == "RETRY"
                }, "retry \(retries) held")
            XCTAssertEqual(try client.command("LLEN", "celery").integer, 0)
            clock.advance(1)
        }
        XCTAssertTrue(
            try eventually {
                try self.heldRetries() == [givesUp.id: 3] && self.result(recovers.id)?["status"] == "SUCCESS"
            })
        XCTAssertEqual(try result(recovers.id)?["result"], 2)
        XCTAssertEqual(try result(givesUp.id)?["status"], "RETRY")
        clock.advance(1)
        XCTAssertTrue(try eventually { try self.result(givesUp.id)?["status"] == "FAILURE" })
        worker.stop()
        XCTAssertEqual(
            try result(givesUp.id)?["result"],
            ["exc_type": "ConnectionError", "exc_message": ["attempt 3"], "exc_module": "builtins"])
        try assertClean(results: [recovers, givesUp])
    }

    func testRetriedMessageIsWhatCeleryWouldSend() throws {
        let clock = ManualClock(CeleryTime.now())
        let worker = InProcessWorker(redis: redis, clock: clock) { r in
            r.register("later", options: TaskOptions(maxRetries: 1)) { ctx in
                if ctx.retries == 0 {
                    throw ctx.retry(after: 60, because: TaskFailure(type: "IOError", message: "busy"))
                }
                return "done"
            }
        }
        let m = TaskMessage(task: "later", args: [1])
        try enqueue([m])
        // The retry is claimed and held for its ETA, a minute away on the held clock.
        XCTAssertTrue(
            try eventually { try self.heldRetries() == [m.id: 1] && self.result(m.id)?["status"] == "RETRY" })
        worker.stop()
        // Returned on shutdown: it is back in the queue.
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 1)
        let raw = try XCTUnwrap(try client.command("LINDEX", "celery", "0").bytes)
        let retried = try TaskMessage.decode(raw)
        XCTAssertEqual(retried.id, m.id)
        XCTAssertEqual(retried.retries, 1)
        XCTAssertNotEqual(retried.deliveryTag, m.deliveryTag)
        let eta = try XCTUnwrap(retried.eta.flatMap(CeleryTime.parse))
        XCTAssertEqual(eta, clock.now() + 60, accuracy: 0.001)
        XCTAssertEqual(try result(m.id)?["result"]?["exc_type"], "IOError")
        XCTAssertEqual(
            try client.keys(),
            ["celery", ResultRecord.key(m.id), "_kombu.binding.celery", "_kombu.binding_permanent.celery"])
    }

    /// The stuck task blocks until the test lets it go; its hard limit passes when the clock is moved.
    func testHardTimeLimitFailsTheTaskAndFreesItsSlot() throws {
        let clock = ManualClock(CeleryTime.now())
        let release = DispatchSemaphore(value: 0)
        let running = LockedBox<TaskContext?>(nil)
        let worker = InProcessWorker(redis: redis, concurrency: 1, clock: clock) { r in
            r.register("stuck") { ctx in
                running.set(ctx)
                release.wait()  // ignores every limit
                return "late"
            }
        }
        var stuck = TaskMessage(task: "stuck")
        stuck.timeLimit = (nil, 60)
        let next = TaskMessage(task: "add", args: [1, 1])
        try enqueue([stuck, next])
        XCTAssertTrue(try eventually { running.get() != nil }, "stuck started")
        XCTAssertNil(try result(stuck.id))
        XCTAssertNil(try result(next.id), "one slot, taken")
        clock.advance(60.5)
        XCTAssertTrue(try eventually { try self.result(next.id)?["result"] == 2 }, "slot not freed")
        XCTAssertEqual(
            try result(stuck.id)?["result"],
            ["exc_type": "TimeLimitExceeded", "exc_message": [60.0], "exc_module": "billiard.exceptions"])
        XCTAssertEqual(worker.consumer.pool.size, 1)
        // The abandoned thread finishes: its late result must not land.
        release.signal()
        let ctx = try XCTUnwrap(running.get())
        XCTAssertTrue(eventually { ctx.progress.withLock { $0.finished } }, "the abandoned run ended")
        worker.stop()
        XCTAssertEqual(try result(stuck.id)?["status"], "FAILURE")
        try assertClean(results: [stuck, next])
    }

    func testSoftTimeLimitInterruptsTheTask() throws {
        let clock = ManualClock(CeleryTime.now())
        let started = LockedBox(false)
        let worker = InProcessWorker(redis: redis, clock: clock) { r in
            r.register("slow") { ctx in
                started.set(true)
                try ctx.sleep(seconds: 600)
                return "finished"
            }
        }
        var m = TaskMessage(task: "slow")
        m.timeLimit = (60, nil)
        try enqueue([m])
        XCTAssertTrue(eventually { started.get() })
        XCTAssertNil(try result(m.id))
        clock.advance(60.5)
        // The sleep checks the limit every 50 ms: told within a moment, not after its ten minutes.
        XCTAssertTrue(try eventually(timeout: 5) { try self.result(m.id)?["status"] == "FAILURE" })
        worker.stop()
        XCTAssertEqual(try result(m.id)?["result"]?["exc_type"], "SoftTimeLimitExceeded")
        try assertClean(results: [m])
    }

    /// Expired on arrival, or by the time its ETA comes: REVOKED, not run; one whose
    /// expiry is later than its ETA runs.
    func testExpiredTaskIsRevokedNotRun() throws {
        let clock = ManualClock(CeleryTime.now())
        let start = clock.now()
        let worker = InProcessWorker(redis: redis, clock: clock) { r in
            r.register("must_not_run") { _ in throw TaskFailure(type: "AssertionError", message: "ran") }
            r.register("may_run") { _ in "ran" }
        }
        var expired = TaskMessage(task: "must_not_run")
        expired.expires = CeleryTime.isoformat(start - 1)
        var expiresWhileHeld = TaskMessage(task: "must_not_run")
        expiresWhileHeld.eta = CeleryTime.isoformat(start + 60)
        expiresWhileHeld.expires = CeleryTime.isoformat(start + 30)
        var runsInTime = TaskMessage(task: "may_run")
        runsInTime.eta = CeleryTime.isoformat(start + 60)
        runsInTime.expires = CeleryTime.isoformat(start + 120)
        try enqueue([expired, expiresWhileHeld, runsInTime])
        XCTAssertTrue(
            try eventually {
                try self.result(expired.id)?["status"] == "REVOKED"
                    && Set(self.client.heldMessages().values.map(\.id)) == [expiresWhileHeld.id, runsInTime.id]
            })
        XCTAssertNil(try result(expiresWhileHeld.id))
        XCTAssertNil(try result(runsInTime.id))
        clock.advance(61)
        XCTAssertTrue(
            try eventually { try self.result(expiresWhileHeld.id) != nil && self.result(runsInTime.id) != nil })
        worker.stop()
        for m in [expired, expiresWhileHeld] {
            XCTAssertEqual(try result(m.id)?["status"], "REVOKED")
            XCTAssertEqual(try result(m.id)?["result"]?["exc_type"], "TaskRevokedError")
        }
        XCTAssertEqual(try result(runsInTime.id)?["result"], "ran")
        try assertClean(results: [expired, expiresWhileHeld, runsInTime])
    }

    /// 1/m: one start at once, then one more each time the clock moves a minute.
    func testRateLimitSpacesStarts() throws {
        let clock = ManualClock(CeleryTime.now())
        let starts = LockedBox<[Double]>([])
        let worker = InProcessWorker(redis: redis, concurrency: 4, clock: clock) { r in
            r.register("limited", options: TaskOptions(rateLimit: RateLimit("1/m"))) { _ in
                starts.modify { $0.append(clock.now()) }
                return nil
            }
        }
        let messages = (0..<6).map { _ in TaskMessage(task: "limited") }
        try enqueue(messages)
        func finished() throws -> Int { try messages.filter { try self.result($0.id) != nil }.count }
        for step in 1...6 {
            XCTAssertTrue(
                try eventually {
                    try finished() == step && self.client.command("HLEN", "unacked").integer == Int64(6 - step)
                },
                "step \(step)")
            XCTAssertEqual(try finished(), step, "no start before the clock moved")
            clock.advance(60.5)
        }
        worker.stop()
        let t = starts.get().sorted()
        XCTAssertEqual(t.count, 6)
        for i in 1..<6 { XCTAssertGreaterThanOrEqual(t[i] - t[i - 1], 60, "start \(i)") }
        try assertClean(results: messages)
    }

    func testIgnoreResultStoresNothing() throws {
        let worker = InProcessWorker(redis: redis)
        var m = TaskMessage(task: "add", args: [1, 2])
        m.ignoreResult = true
        let marker = TaskMessage(task: "add", args: [3, 4])
        try enqueue([m, marker])
        XCTAssertTrue(try eventually(timeout: 5) { try self.result(marker.id) != nil })
        worker.stop()
        XCTAssertNil(try result(m.id))
        try assertClean(results: [marker])
    }

    func testRateLimitAndBackoffArithmetic() {
        XCTAssertEqual(RateLimit("10/s")?.perSecond, 10)
        XCTAssertEqual(RateLimit("120/m")?.perSecond, 2)
        XCTAssertEqual(RateLimit("3600/h")?.perSecond, 1)
        XCTAssertNil(RateLimit("fast"))
        let o = TaskOptions(retryBackoff: 1, retryBackoffMax: 10, retryJitter: false)
        XCTAssertEqual([0, 1, 2, 3, 4, 10].map { o.backoff(retries: $0) }, [1, 2, 4, 8, 10, 10])
        XCTAssertEqual(TaskOptions(retryBackoff: 4).backoff(retries: 1, random: 0.5), 4)
        var limiter = RateLimiter()
        limiter.set("t", RateLimit("2/s"))
        XCTAssertEqual(limiter.reserve("t", now: 100), 0)
        XCTAssertEqual(limiter.reserve("t", now: 100), 0.5, accuracy: 1e-9)
    }
}
