@testable import FastCore
import Foundation
import XCTest

/// The claim budget (`ClaimBudget`): how many deliveries a worker holds per slot.
final class ClaimSizingTests: XCTestCase {
    /// Before any task finished, one per slot; short tasks then open the window one
    /// completion at a time (slow start) up to the deepest batch.
    func testShortTasksOpenTheWindowOneCompletionAtATime() {
        var budget = ClaimBudget(multiplier: nil)
        XCTAssertEqual(budget.window(slots: 2), 2, "nothing seen yet: one per slot")
        var t = 100.0
        for i in 1...10 {
            budget.finished(started: t, at: t + 0.000_004)
            t += 0.00001
            XCTAssertEqual(budget.window(slots: 2), 2 + i, "one more per completion")
        }
        for _ in 0..<2000 {
            budget.finished(started: t, at: t + 0.000_004)
            t += 0.00001
        }
        XCTAssertEqual(budget.perSlot, ClaimBudget.defaultMaxPerSlot)
        XCTAssertEqual(budget.window(slots: 2), 2 * ClaimBudget.defaultMaxPerSlot, "4 µs tasks: the deepest batch")
    }

    /// Each slot holds its task plus at most 4 ms of queued work: 1 ms tasks, 5 per slot;
    /// 300 ms tasks, only the running one.
    func testASlotHoldsAtMostAFewMillisecondsOfQueuedWork() {
        var budget = ClaimBudget(multiplier: nil)
        var t = 0.0
        for _ in 0..<200 {
            budget.finished(started: t, at: t + 0.001)
            t += 0.001
        }
        XCTAssertEqual(budget.averageSeconds ?? 0, 0.001, accuracy: 1e-9)
        XCTAssertEqual(budget.perSlot, 5)
        XCTAssertEqual(budget.window(slots: 4), 20)

        var long = ClaimBudget(multiplier: nil)
        for i in 0..<5 { long.finished(started: Double(i), at: Double(i) + 0.3) }
        XCTAssertEqual(long.perSlot, 1)
        XCTAssertEqual(long.window(slots: 2), 2, "long tasks: one per slot, nothing queued")
        XCTAssertEqual(long.allowance, 0)
    }

    /// A long task among short ones shrinks the window while it runs (not only once it
    /// finished), and restarts the slow start; the average then recovers as short ones finish.
    func testARunningLongTaskShrinksTheWindowBeforeItFinishes() {
        var budget = ClaimBudget(multiplier: nil)
        var t = 50.0
        for _ in 0..<3000 {
            budget.finished(started: t, at: t + 0.000_005)
            t += 0.00001
        }
        XCTAssertEqual(budget.window(slots: 2), 512)
        budget.running(longestStartedAt: t, now: t + 0.0005)
        XCTAssertEqual(budget.perSlot, 9, "0.5 ms run so far: 1 + 4 ms / 0.5 ms")
        budget.running(longestStartedAt: t, now: t + 0.010)
        XCTAssertEqual(budget.window(slots: 2), 2, "10 ms and running: nothing queued")
        XCTAssertEqual(budget.allowance, 0, "the slow start begins again")
        budget.finished(started: t, at: t + 0.3)
        budget.running(longestStartedAt: nil, now: t + 0.3)
        XCTAssertEqual(budget.averageSeconds ?? 0, 0.000_005 + (0.3 - 0.000_005) * ClaimBudget.weight, accuracy: 1e-9)
        XCTAssertEqual(budget.window(slots: 2), 2, "the long task weighs in the average")
        var n = 0
        while budget.perSlot == 1 {
            budget.finished(started: t, at: t + 0.000_005)
            n += 1
        }
        XCTAssertLessThan(n, 40, "short tasks bring the average back down")
    }

    /// A set `--prefetch-multiplier` means what Celery means: that many per slot, whatever the durations.
    func testASetMultiplierIsCeleryWindow() {
        var budget = ClaimBudget(multiplier: 4)
        XCTAssertFalse(budget.isAdaptive)
        XCTAssertEqual(budget.window(slots: 2), 8)
        budget.finished(started: 0, at: 0.000_001)
        budget.running(longestStartedAt: 0, now: 30)
        XCTAssertEqual(budget.window(slots: 2), 8)
        XCTAssertNil(budget.averageSeconds, "not tracked")
        XCTAssertEqual(ClaimBudget(multiplier: 0).window(slots: 3), 3, "at least one per slot")
    }

    /// Clock readings that go backwards or are not finite do not trap nor poison the average.
    func testOddClockReadingsAreHarmless() {
        var budget = ClaimBudget(multiplier: nil)
        budget.finished(started: 10, at: 9)
        XCTAssertEqual(budget.averageSeconds, 0)
        XCTAssertEqual(budget.perSlot, ClaimBudget.defaultMaxPerSlot)
        budget.finished(started: -.infinity, at: 1)
        XCTAssertEqual(budget.averageSeconds, 0)
        budget.running(longestStartedAt: 5, now: 4)
        XCTAssertEqual(budget.runningSeconds, 0)
        XCTAssertEqual(budget.window(slots: Int.max), Int.max / 2)
    }

    /// The fetcher looks at the running tasks at most every millisecond of the worker's clock.
    func testTheFetcherLooksAtRunningTasksEveryMillisecond() {
        var fetcher = Fetcher(queues: ["celery"], maxIdle: 0.02)
        XCTAssertTrue(fetcher.runningDue(now: 1000))
        fetcher.running(longestStartedAt: 999.99, now: 1000)
        XCTAssertFalse(fetcher.runningDue(now: 1000.0005))
        XCTAssertTrue(fetcher.runningDue(now: 1000.0011))
        XCTAssertEqual(fetcher.window(slots: 2), 2)
        XCTAssertFalse(Fetcher(queues: ["celery"], maxIdle: 0.02, multiplier: 4).runningDue(now: 0))
    }
}

/// Two real workers (in this process, each its own consumer and connection) on one queue:
/// by default neither hoards long tasks while the other idles.
final class ClaimFairnessTests: RedisTestCase {
    /// Per worker: tasks running now, long tasks run, short tasks run.
    final class Tally: @unchecked Sendable {
        let running = LockedBox(0)
        let mostRunning = LockedBox(0)
        let long = LockedCounter()
        let short = LockedCounter()
    }

    private func worker(_ name: String, _ tally: Tally, multiplier: Int? = nil) -> InProcessWorker {
        InProcessWorker(
            redis: redis, concurrency: 2, hostname: name,
            register: { r in
                r.register("long") { _ in
                    tally.running.modify { $0 += 1 }
                    tally.mostRunning.modify { [n = tally.running.get()] in $0 = max($0, n) }
                    Thread.sleep(forTimeInterval: 0.3)  // the workload: a 300 ms task
                    tally.running.modify { $0 -= 1 }
                    tally.long.increment()
                    return "slept"
                }
                r.register("short") { _ in
                    tally.short.increment()
                    return "done"
                }
            }, configure: { $0.prefetchMultiplier = multiplier })
    }

    /// What each worker held at most while tasks were left, sampled until all are done.
    private func drain(_ ids: [String], _ a: InProcessWorker, _ b: InProcessWorker) throws -> (
        a: Int, b: Int, unacked: Int, samples: Int
    ) {
        var most = (a: 0, b: 0, unacked: 0, samples: 0)
        let last = ids.map(ResultRecord.key)
        XCTAssertTrue(
            try eventually(timeout: 60, interval: 0.002) {
                most.a = max(most.a, a.consumer.holding.get())
                most.b = max(most.b, b.consumer.holding.get())
                let r = try self.client.pipeline([["HLEN", "unacked"], ["EXISTS"] + last])
                most.unacked = max(most.unacked, Int(r[0].integer ?? 0))
                most.samples += 1
                return r[1].integer == Int64(last.count)
            }, "not every task finished")
        return most
    }

    /// 20 × 300 ms tasks, two workers at -c 2 with default flags: neither ever holds more
    /// than its two slots' worth (running + claimed), Redis never holds more than 4 claimed,
    /// and each runs about half.
    func testTwoWorkersShareALongTaskQueue() throws {
        let ta = Tally()
        let tb = Tally()
        let messages = (0..<20).map { _ in TaskMessage(task: "long") }
        try enqueue(messages)
        let a = worker("a@fair", ta)
        let b = worker("b@fair", tb)
        defer {
            a.stop()
            b.stop()
        }
        let most = try drain(messages.map(\.id), a, b)
        XCTAssertLessThanOrEqual(most.a, 2, "a held more than its share (\(most.samples) samples)")
        XCTAssertLessThanOrEqual(most.b, 2, "b held more than its share (\(most.samples) samples)")
        XCTAssertLessThanOrEqual(most.unacked, 4, "claimed beyond both workers' slots")
        XCTAssertEqual(ta.long.value + tb.long.value, 20)
        XCTAssertGreaterThanOrEqual(ta.long.value, 8, "a ran \(ta.long.value), b \(tb.long.value)")
        XCTAssertGreaterThanOrEqual(tb.long.value, 8, "a ran \(ta.long.value), b \(tb.long.value)")
        XCTAssertEqual(ta.mostRunning.get(), 2, "a used both slots")
        XCTAssertEqual(tb.mostRunning.get(), 2, "b used both slots")
    }

    /// The same queue with `--prefetch-multiplier 4` set: Celery's window, 8 held by the
    /// first worker, as the user asked (the default's fairness is not forced on it).
    func testASetMultiplierHoldsCeleryWindow() throws {
        let ta = Tally()
        try enqueue((0..<20).map { _ in TaskMessage(task: "long") })
        let a = worker("a@celery-window", ta, multiplier: 4)
        defer { a.stop() }
        var most = 0
        XCTAssertTrue(
            try eventually(timeout: 20, interval: 0.002) {
                most = max(most, a.consumer.holding.get())
                let unacked = try self.client.command("HLEN", "unacked").integer
                return most >= 8 && unacked == 8
            }, "held at most \(most)")
        XCTAssertEqual(a.consumer.capacity, 8)
    }

    /// A mixed queue, one 300 ms task after every 20 instant ones (20 long, 400 short), two
    /// workers with default flags: each runs about half of the long tasks, and while a
    /// worker runs long tasks it does not sit on a deep batch (a worker's holding stays
    /// within a few per slot; a fixed window of 256 per slot would take the whole queue).
    func testAMixedQueueIsSharedToo() throws {
        let ta = Tally()
        let tb = Tally()
        var messages: [TaskMessage] = []
        for _ in 0..<20 {
            messages += (0..<20).map { _ in TaskMessage(task: "short") }
            messages.append(TaskMessage(task: "long"))
        }
        try enqueue(messages)
        let a = worker("a@mixed", ta)
        let b = worker("b@mixed", tb)
        defer {
            a.stop()
            b.stop()
        }
        let most = try drain(messages.map(\.id), a, b)
        XCTAssertEqual(ta.short.value + tb.short.value, 400)
        XCTAssertEqual(ta.long.value + tb.long.value, 20)
        XCTAssertGreaterThanOrEqual(ta.long.value, 6, "a ran \(ta.long.value) long, b \(tb.long.value)")
        XCTAssertGreaterThanOrEqual(tb.long.value, 6, "a ran \(ta.long.value) long, b \(tb.long.value)")
        XCTAssertLessThan(most.a, 64, "a held \(most.a) at once (\(most.samples) samples)")
        XCTAssertLessThan(most.b, 64, "b held \(most.b) at once (\(most.samples) samples)")
    }
}
