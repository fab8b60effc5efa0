@testable import FastCore
import Foundation
import XCTest

/// `TaskOptions.autoretryFor` (Celery's `autoretry_for`): a listed error is retried with
/// the task's backoff until `maxRetries`, then it is the FAILURE; an unlisted one fails at once.
final class AutoRetryTests: RedisTestCase {
    struct QuotaExceeded: Error, CustomStringConvertible {
        let used: Int
        var description: String { "quota used: \(used)" }
    }
    struct Unlisted: Error, CustomStringConvertible {
        var description: String { "not listed" }
    }

    /// The only message held in `unacked` (claimed, waiting for its ETA), or nil.
    func heldMessage() throws -> TaskMessage? {
        let held = try client.heldMessages()
        return held.count == 1 ? held.values.first : nil
    }

    /// Each try is stored as RETRY with the error as Celery types it, and held for an ETA of
    /// `min(retryBackoffMax, retryBackoff × 2^retries)` on the worker's clock; the try after
    /// `maxRetries` is the FAILURE with that error.
    func testListedErrorIsRetriedWithBackoffUpToMaxRetriesThenFails() throws {
        let clock = ManualClock(CeleryTime.now())
        let runs = LockedCounter()
        let options = TaskOptions(
            maxRetries: 3, retryBackoff: 2, retryBackoffMax: 5, retryJitter: false,
            autoretryFor: [.type(QuotaExceeded.self)])
        let worker = InProcessWorker(redis: redis, clock: clock) { r in
            r.register("quota", options: options) { ctx in
                runs.increment()
                throw QuotaExceeded(used: ctx.retries)
            }
        }
        let m = TaskMessage(task: "quota", args: [1])
        try enqueue([m])
        var now = clock.now()
        for (retries, backoff) in [(1, 2.0), (2, 4.0), (3, 5.0)] {
            XCTAssertEqual(options.backoff(retries: retries - 1), backoff)
            XCTAssertTrue(
                try eventually {
                    try self.heldMessage()?.retries == retries && runs.value == retries
                        && self.result(m.id)?["status"] == "RETRY"
                }, "retry \(retries) held")
            let held = try XCTUnwrap(try heldMessage())
            XCTAssertEqual(held.id, m.id)
            XCTAssertEqual(held.eta, CeleryTime.isoformat(now + backoff), "retry \(retries)'s ETA")
            XCTAssertEqual(
                try result(m.id)?["result"],
                [
                    "exc_type": "QuotaExceeded", "exc_message": .array([.string("quota used: \(retries - 1)")]),
                    "exc_module": "celeris",
                ])
            XCTAssertEqual(try client.command("LLEN", "celery").integer, 0)
            // Past the ETA (a little more: the ETA is written to the microsecond).
            clock.advance(backoff + 0.5)
            now += backoff + 0.5
        }
        XCTAssertTrue(try eventually { try self.result(m.id)?["status"] == "FAILURE" })
        worker.stop()
        XCTAssertEqual(runs.value, 4)
        XCTAssertEqual(
            try result(m.id)?["result"],
            ["exc_type": "QuotaExceeded", "exc_message": ["quota used: 3"], "exc_module": "celeris"])
        XCTAssertEqual(try client.heldMessages().count, 0)
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 0)
    }

    /// An error the task does not list is its FAILURE on the first run: nothing is queued or held again.
    func testUnlistedErrorFailsAtOnce() throws {
        let clock = ManualClock(CeleryTime.now())
        let runs = LockedCounter()
        let worker = InProcessWorker(redis: redis, clock: clock) { r in
            r.register(
                "picky",
                options: TaskOptions(maxRetries: 3, retryJitter: false, autoretryFor: [.type(QuotaExceeded.self)])
            ) { _ in
                runs.increment()
                throw Unlisted()
            }
        }
        let m = TaskMessage(task: "picky")
        try enqueue([m])
        XCTAssertTrue(try eventually { try self.result(m.id)?["status"] == "FAILURE" })
        worker.stop()
        XCTAssertEqual(runs.value, 1)
        XCTAssertEqual(
            try result(m.id)?["result"],
            ["exc_type": "Unlisted", "exc_message": ["not listed"], "exc_module": "celeris"])
        XCTAssertEqual(try client.heldMessages().count, 0)
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 0)
    }

    /// `.named` matches the `exc_type` Celery reports: a `TaskFailure`'s type, or a Swift error's type name.
    func testNamedMatcherRetriesTaskFailureTypeAndSwiftTypeName() throws {
        let clock = ManualClock(CeleryTime.now())
        let runs = LockedCounter()
        let worker = InProcessWorker(redis: redis, clock: clock) { r in
            r.register(
                "disk",
                options: TaskOptions(
                    maxRetries: 1, retryBackoff: 1, retryJitter: false, autoretryFor: [.named("IOError")])
            ) { _ in
                runs.increment()
                throw TaskFailure(type: "IOError", message: "disk busy")
            }
            r.register(
                "quota_named",
                options: TaskOptions(
                    maxRetries: 1, retryBackoff: 1, retryJitter: false, autoretryFor: [.named("QuotaExceeded")])
            ) { _ in
                runs.increment()
                throw QuotaExceeded(used: 7)
            }
        }
        let disk = TaskMessage(task: "disk")
        let quota = TaskMessage(task: "quota_named")
        try enqueue([disk, quota])
        let now = clock.now()
        XCTAssertTrue(
            try eventually {
                let held = try self.client.heldMessages().values
                return try held.count == 2 && held.allSatisfy { $0.retries == 1 }
                    && self.result(disk.id)?["status"] == "RETRY" && self.result(quota.id)?["status"] == "RETRY"
            })
        for held in try client.heldMessages().values {
            XCTAssertEqual(held.eta, CeleryTime.isoformat(now + 1), "\(held.task)'s ETA")
        }
        clock.advance(1.5)
        XCTAssertTrue(
            try eventually {
                try self.result(disk.id)?["status"] == "FAILURE" && self.result(quota.id)?["status"] == "FAILURE"
            })
        worker.stop()
        XCTAssertEqual(runs.value, 4)
        XCTAssertEqual(
            try result(disk.id)?["result"],
            ["exc_type": "IOError", "exc_message": ["disk busy"], "exc_module": "builtins"])
        XCTAssertEqual(
            try result(quota.id)?["result"],
            ["exc_type": "QuotaExceeded", "exc_message": ["quota used: 7"], "exc_module": "celeris"])
    }

    /// An async task's listed error is retried the same way (its body runs as a Swift task).
    func testAsyncTaskErrorIsRetriedThenFails() throws {
        let clock = ManualClock(CeleryTime.now())
        let runs = LockedCounter()
        let worker = InProcessWorker(redis: redis, clock: clock) { r in
            r.register(
                "quota_async",
                options: TaskOptions(
                    maxRetries: 1, retryBackoff: 3, retryJitter: false, autoretryFor: [.type(QuotaExceeded.self)]),
                async: { ctx in
                    runs.increment()
                    await Task.yield()
                    throw QuotaExceeded(used: ctx.retries)
                })
        }
        let m = TaskMessage(task: "quota_async")
        try enqueue([m])
        let now = clock.now()
        XCTAssertTrue(
            try eventually {
                try self.heldMessage()?.retries == 1 && self.result(m.id)?["status"] == "RETRY" && runs.value == 1
            })
        XCTAssertEqual(try heldMessage()?.eta, CeleryTime.isoformat(now + 3))
        clock.advance(3.5)
        XCTAssertTrue(try eventually { try self.result(m.id)?["status"] == "FAILURE" })
        worker.stop()
        XCTAssertEqual(runs.value, 2)
        XCTAssertEqual(
            try result(m.id)?["result"],
            ["exc_type": "QuotaExceeded", "exc_message": ["quota used: 1"], "exc_module": "celeris"])
    }

    /// An async task cancelled at its soft time limit is `SoftTimeLimitExceeded` to
    /// `autoretryFor`, as a sync task's is: `.named("SoftTimeLimitExceeded")` and
    /// `.named("Exception")` retry it (RETRY with that cause, held for its ETA); a task not
    /// listing it fails. Before, the async cancellation skipped the automatic retry.
    func testAsyncSoftTimeLimitIsRetriedWhenListed() throws {
        let clock = ManualClock(CeleryTime.now())
        let started = LockedCounter()
        let hang: AsyncTaskFunction = { ctx in
            started.increment()
            try await ctx.sleep(seconds: 3600)
            return "woke"
        }
        let worker = InProcessWorker(redis: redis, concurrency: 3, clock: clock) { r in
            for (name, matchers) in [
                ("soft_named", [ErrorMatcher.named("SoftTimeLimitExceeded")]),
                ("soft_any", [ErrorMatcher.named("Exception")]), ("soft_unlisted", [ErrorMatcher.named("IOError")]),
            ] {
                r.register(
                    name,
                    options: TaskOptions(
                        maxRetries: 2, retryBackoff: 5, retryJitter: false, softTimeLimit: 60, autoretryFor: matchers),
                    async: hang)
            }
        }
        let named = TaskMessage(task: "soft_named")
        let any = TaskMessage(task: "soft_any")
        let unlisted = TaskMessage(task: "soft_unlisted")
        try enqueue([named, any, unlisted])
        XCTAssertTrue(eventually { started.value == 3 })
        let now = clock.now()
        clock.advance(60.5)
        XCTAssertTrue(
            try eventually { try [named, any, unlisted].allSatisfy { try self.result($0.id)?["status"] != nil } })
        let soft: JSON = ["exc_type": "SoftTimeLimitExceeded", "exc_message": [], "exc_module": "billiard.exceptions"]
        for m in [named, any] {
            XCTAssertEqual(try result(m.id)?["status"], "RETRY", m.task)
            XCTAssertEqual(try result(m.id)?["result"], soft, m.task)
        }
        XCTAssertEqual(try result(unlisted.id)?["status"], "FAILURE")
        XCTAssertEqual(try result(unlisted.id)?["result"], soft)
        let held = try client.heldMessages().values.filter { $0.retries == 1 }
        XCTAssertEqual(Set(held.map(\.id)), [named.id, any.id], "both held for their retry")
        for m in held { XCTAssertEqual(m.eta, CeleryTime.isoformat(now + 60.5 + 5)) }
        worker.stop()
    }

    /// Matchers on their own: by type (a subclass matches, as `isinstance`), by name, `Exception` for any.
    func testMatchers() {
        class Base: Error, @unchecked Sendable {}
        final class Derived: Base, @unchecked Sendable {}
        XCTAssertTrue(ErrorMatcher.type(Base.self).matches(Derived()))
        XCTAssertFalse(ErrorMatcher.type(Derived.self).matches(Base()))
        XCTAssertFalse(ErrorMatcher.type(QuotaExceeded.self).matches(Unlisted()))
        XCTAssertTrue(ErrorMatcher.named("Unlisted").matches(Unlisted()))
        XCTAssertTrue(ErrorMatcher.named("ValueError").matches(TaskFailure(type: "ValueError", message: "x")))
        XCTAssertFalse(ErrorMatcher.named("ValueError").matches(TaskFailure(type: "TypeError", message: "x")))
        XCTAssertTrue(ErrorMatcher.named("Exception").matches(Unlisted()))
    }
}
