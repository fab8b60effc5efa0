import FastCore
import Foundation
import XCTest

/// Celery's task options carried by the protocol or declared by a task.
final class TaskOptionsTests: RedisTestCase {
    func assertClean(file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0, file: file, line: line)
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 0, file: file, line: line)
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

    func testRetryWithBackoffEndsInSuccessOrPastMaxRetriesInFailure() throws {
        let worker = InProcessWorker(redis: redis, register: Self.registerFlaky)
        let recovers = TaskMessage(task: "flaky", args: [2])
        let givesUp = TaskMessage(task: "flaky", args: [10])
        try enqueue([recovers, givesUp])
        XCTAssertTrue(
            try eventually(timeout: 15) {
                try self.result(recovers.id)?["status"] == "SUCCESS" && self.result(givesUp.id)?["status"] == "FAILURE"
            })
        worker.stop()
        XCTAssertEqual(try result(recovers.id)?["result"], 2)
        XCTAssertEqual(
            try result(givesUp.id)?["result"],
            ["exc_type": "ConnectionError", "exc_message": ["attempt 3"], "exc_module": "builtins"])
        try assertClean()
    }

    func testRetriedMessageIsWhatCeleryWouldSend() throws {
        let worker = InProcessWorker(redis: redis) { r in
            r.register("later", options: TaskOptions(maxRetries: 1)) { ctx in
                if ctx.retries == 0 {
                    throw ctx.retry(after: 60, because: TaskFailure(type: "IOError", message: "busy"))
                }
                return "done"
            }
        }
        let m = TaskMessage(task: "later", args: [1])
        try enqueue([m])
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id)?["status"] == "RETRY" })
        worker.stop()
        // The retry was claimed (held for its ETA) and returned on shutdown: it is back in the queue.
        let raw = try XCTUnwrap(try client.command("LINDEX", "celery", "0").bytes)
        let retried = try TaskMessage.decode(raw)
        XCTAssertEqual(retried.id, m.id)
        XCTAssertEqual(retried.retries, 1)
        XCTAssertNotEqual(retried.deliveryTag, m.deliveryTag)
        let eta = try XCTUnwrap(retried.eta.flatMap(CeleryTime.parse))
        XCTAssertEqual(eta, CeleryTime.now() + 60, accuracy: 5)
        XCTAssertEqual(try result(m.id)?["result"]?["exc_type"], "IOError")
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
    }

    func testHardTimeLimitFailsTheTaskAndFreesItsSlot() throws {
        let worker = InProcessWorker(redis: redis, concurrency: 1) { r in
            r.register("stuck") { _ in
                Thread.sleep(forTimeInterval: 3)  // ignores every limit
                return "late"
            }
        }
        var stuck = TaskMessage(task: "stuck")
        stuck.timeLimit = (nil, 0.3)
        let next = TaskMessage(task: "add", args: [1, 1])
        try enqueue([stuck, next])
        XCTAssertTrue(try eventually(timeout: 2.5) { try self.result(next.id)?["result"] == 2 }, "slot not freed")
        XCTAssertEqual(
            try result(stuck.id)?["result"],
            ["exc_type": "TimeLimitExceeded", "exc_message": [0.3], "exc_module": "billiard.exceptions"])
        XCTAssertEqual(worker.consumer.pool.size, 1)
        Thread.sleep(forTimeInterval: 3)  // the abandoned thread finishes: its late result must not land
        XCTAssertEqual(try result(stuck.id)?["status"], "FAILURE")
        worker.stop()
        try assertClean()
    }

    func testSoftTimeLimitInterruptsTheTask() throws {
        let worker = InProcessWorker(redis: redis) { r in
            r.register("slow") { ctx in
                try ctx.sleep(seconds: 10)
                return "finished"
            }
        }
        var m = TaskMessage(task: "slow")
        m.timeLimit = (0.2, nil)
        try enqueue([m])
        XCTAssertTrue(try eventually(timeout: 5) { try self.result(m.id)?["status"] == "FAILURE" })
        worker.stop()
        XCTAssertEqual(try result(m.id)?["result"]?["exc_type"], "SoftTimeLimitExceeded")
        try assertClean()
    }

    func testExpiredTaskIsRevokedNotRun() throws {
        let worker = InProcessWorker(redis: redis) { r in
            r.register("must_not_run") { _ in throw TaskFailure(type: "AssertionError", message: "ran") }
        }
        var m = TaskMessage(task: "must_not_run")
        m.expires = CeleryTime.isoformat(CeleryTime.now() - 1)
        try enqueue([m])
        XCTAssertTrue(try eventually(timeout: 5) { try self.result(m.id) != nil })
        worker.stop()
        XCTAssertEqual(try result(m.id)?["status"], "REVOKED")
        XCTAssertEqual(try result(m.id)?["result"]?["exc_type"], "TaskRevokedError")
        try assertClean()
    }

    func testRateLimitSpacesStarts() throws {
        let starts = LockedBox<[Double]>([])
        let worker = InProcessWorker(redis: redis, concurrency: 4) { r in
            r.register("limited", options: TaskOptions(rateLimit: RateLimit("5/s"))) { _ in
                starts.modify { $0.append(CeleryTime.now()) }
                return nil
            }
        }
        let messages = (0..<6).map { _ in TaskMessage(task: "limited") }
        try enqueue(messages)
        XCTAssertTrue(try eventually(timeout: 10) { try messages.allSatisfy { try self.result($0.id) != nil } })
        worker.stop()
        let t = starts.get().sorted()
        XCTAssertEqual(t.count, 6)
        // 1 token at start, then one every 0.2 s: the sixth start is at least ~1 s after the first.
        XCTAssertGreaterThan(t[5] - t[0], 0.8)
        try assertClean()
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
        try assertClean()
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
