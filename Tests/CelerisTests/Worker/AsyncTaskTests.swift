@testable import FastCore
import Foundation
import Logging
import XCTest

/// Async task bodies: each holds a slot and no thread while it awaits, runs at most
/// `-c N` at once, and is cancelled on terminate, at its soft time limit and at cold
/// shutdown. Everything is judged by Redis state and the pool's counters.
final class AsyncTaskTests: RedisTestCase {
    /// Threads of this process now.
    private func threadCount() throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count
    }

    /// How many tasks run at once, and the most seen.
    private final class Gauge: @unchecked Sendable {
        private let lock = NSLock()
        private var now = 0
        private var most = 0
        func enter() {
            lock.withLock {
                now += 1; most = max(most, now)
            }
        }
        func leave() { lock.withLock { now -= 1 } }
        var current: Int { lock.withLock { now } }
        var peak: Int { lock.withLock { most } }
    }

    /// `hang_async`: awaits an hour; counts its start and whether it saw cancellation.
    private static func registerHang(started: LockedCounter, cancelled: LockedCounter) -> (inout TaskRegistry) -> Void {
        { r in
            r.register(
                "hang_async",
                async: { ctx in
                    started.increment()
                    do {
                        try await ctx.sleep(seconds: 3600)
                    } catch is CancellationError {
                        cancelled.increment()
                        throw CancellationError()
                    }
                    return "woke"
                })
        }
    }

    /// 1000 tasks at -c 1000 are all in their bodies at once (each waits, awaiting, until the
    /// other 999 have started, then awaits a 1 s timer), with no pool thread started and a
    /// handful of threads at most in the process. Held to slots, or to threads, they could
    /// never all be in at once, and none would finish.
    func testThousandAwaitingTasksShareAHandfulOfThreads() throws {
        let before = try threadCount()
        let entered = LockedCounter()
        let worker = InProcessWorker(
            redis: redis, concurrency: 1000, prefetch: 1,
            register: { r in
                r.register(
                    "gathered_wait_async",
                    async: { ctx in
                        entered.increment()
                        while entered.value < 1000 { try await ctx.sleep(seconds: 0.01) }
                        try await ctx.sleep(seconds: 1)
                        return 1
                    })
            })
        let messages = (0..<1000).map { _ in TaskMessage(task: "gathered_wait_async") }
        try enqueue(messages)
        var peak = try threadCount()
        XCTAssertTrue(
            try eventually(timeout: 60, interval: 0.05) {
                peak = max(peak, try self.threadCount())
                return entered.value == 1000
            }, "all 1000 in their bodies at once")
        let gathered = Date()
        XCTAssertTrue(
            try eventually(timeout: 60, interval: 0.05) {
                peak = max(peak, try self.threadCount())
                return try self.client.resultCount() == 1000
            })
        // Reported, not asserted (the machine is shared): about one timer period.
        print("AsyncTaskTests: 1000 one-second waits ended \(Date().timeIntervalSince(gathered))s after all began")
        XCTAssertLessThan(peak - before, 20, "threads rose from \(before) to \(peak)")
        XCTAssertEqual(worker.consumer.pool.threads, 0, "no thread started for async tasks")
        for m in messages { XCTAssertEqual(try result(m.id)?["status"], "SUCCESS") }
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
        worker.stop()
    }

    /// -c 4: four run at once, never more; the rest wait queued in the pool.
    func testConcurrencyBoundsAsyncTasks() throws {
        let gauge = Gauge()
        let release = LockedBox(false)
        let worker = InProcessWorker(redis: redis, concurrency: 4, prefetch: 4) { r in
            r.register(
                "gated_async",
                async: { ctx in
                    gauge.enter()
                    defer { gauge.leave() }
                    while !release.get() { try await ctx.sleep(seconds: 0.01) }
                    return 1
                })
        }
        let messages = (0..<12).map { _ in TaskMessage(task: "gated_async") }
        try enqueue(messages)
        XCTAssertTrue(eventually { gauge.current == 4 && worker.consumer.pool.queued > 0 }, "four running, more queued")
        XCTAssertEqual(worker.consumer.pool.running, 4)
        XCTAssertEqual(try client.resultCount(), 0)
        release.set(true)
        XCTAssertTrue(try eventually { try self.client.resultCount() == 12 })
        XCTAssertEqual(gauge.peak, 4)
        for m in messages { XCTAssertEqual(try result(m.id)?["result"], 1) }
        XCTAssertTrue(eventually { worker.consumer.pool.running == 0 })
        worker.stop()
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
    }

    /// `revoke(terminate=True)` of an awaiting task (sent by Celery's control client):
    /// its body sees the cancellation, its result is REVOKED, its delivery acknowledged,
    /// and its slot runs the next task.
    func testTerminateCancelsAnAwaitingTask() throws {
        let started = LockedCounter()
        let cancelled = LockedCounter()
        let worker = InProcessWorker(
            redis: redis, concurrency: 1, hostname: "w1@test",
            register: Self.registerHang(started: started, cancelled: cancelled))
        let consumer = worker.consumer
        RemoteControlListener(endpoint: redis.endpoint, logger: Logger(label: "test-control")) {
            consumer.control($0)
        }.start()
        let hang = TaskMessage(task: "hang_async")
        let next = TaskMessage(task: "add", args: [1, 1])
        try enqueue([hang, next])
        XCTAssertTrue(eventually { started.value == 1 })
        XCTAssertNil(try result(next.id), "one slot, taken")
        let reply = try resultLine(
            try runPython("control_probe.py", [redis.url, "revoke", hang.id, "terminate"]))
        XCTAssertNotNil(reply[0]?["w1@test"]?["ok"])
        XCTAssertTrue(try eventually { try self.result(hang.id)?["status"] == "REVOKED" })
        XCTAssertTrue(eventually { cancelled.value == 1 }, "the body saw its cancellation")
        XCTAssertTrue(try eventually { try self.result(next.id)?["result"] == 2 }, "slot freed")
        XCTAssertEqual(try result(hang.id)?["result"]?["exc_type"], "TaskRevokedError")
        XCTAssertTrue(eventually { consumer.pool.running == 0 })
        worker.stop()
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 0)
    }

    /// A gate async bodies await without seeing cancellation (no thread held): a body that
    /// ignores its cancellation, as a CPU loop or a blocking call would.
    private final class DeafGate: @unchecked Sendable {
        private let lock = NSLock()
        private var opened = false
        private var waiting: [CheckedContinuation<Void, Never>] = []
        func wait() async {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = lock.withLock {
                    if opened { return true }
                    waiting.append(c)
                    return false
                }
                if now { c.resume() }
            }
        }
        func open() {
            let all = lock.withLock {
                opened = true
                defer { waiting = [] }
                return waiting
            }
            for c in all { c.resume() }
        }
    }

    /// Async bodies that ignore their cancellation past the hard limit count as abandoned
    /// until they really end: the replaced slot runs the next, and at
    /// `--max-abandoned-threads` the worker restarts warm (as for stuck sync threads,
    /// BrokerFaultTests.testStuckThreadsBeyondTheBoundRestartTheWorkerWarm). Before, an
    /// abandoned async task freed its slot at once and was never counted: each expiry
    /// started another on the cooperative pool and the worker never restarted.
    func testAsyncTasksIgnoringCancellationCountAsAbandonedUpToTheRestart() throws {
        let clock = ManualClock(CeleryTime.now())
        let gate = DeafGate()
        let running = LockedCounter()
        defer { gate.open() }
        let worker = InProcessWorker(
            redis: redis, concurrency: 1, prefetch: 2, clock: clock,
            register: { r in
                r.register(
                    "deaf_async",
                    async: { _ in
                        running.increment()
                        await gate.wait()  // ignores every limit and the cancellation
                        return "late"
                    })
            }, configure: { $0.maxAbandonedThreads = 2 })
        var deaf = (0..<3).map { _ in TaskMessage(task: "deaf_async") }
        for i in deaf.indices { deaf[i].timeLimit = (nil, 10) }
        try enqueue(deaf)
        XCTAssertTrue(eventually { running.value == 1 }, "the first started")
        clock.advance(10.5)
        XCTAssertTrue(
            try eventually { try running.value == 2 && self.client.command("LLEN", "celery").integer == 0 },
            "the second started in the replaced slot, the third claimed")
        XCTAssertEqual(worker.consumer.pool.abandonedThreads, 1, "the first's body still runs")
        XCTAssertFalse(worker.consumer.stoppedForAbandonedThreads.get())
        clock.advance(10.5)
        XCTAssertTrue(eventually { worker.consumer.stoppedForAbandonedThreads.get() }, "restarting")
        worker.stop()
        XCTAssertEqual(worker.consumer.pool.abandonedThreads, 2)
        XCTAssertEqual(running.value, 2, "nothing more started")
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 1, "the third went back to its queue")
        for m in deaf.prefix(2) {
            XCTAssertEqual(try result(m.id)?["result"]?["exc_type"], "TimeLimitExceeded")
        }
        XCTAssertNil(try result(deaf[2].id))
        // Once the bodies end they are no longer counted (their late outcome is not posted).
        gate.open()
        XCTAssertTrue(eventually { worker.consumer.pool.abandonedThreads == 0 })
        XCTAssertEqual(worker.consumer.pool.running, 0)
        for m in deaf.prefix(2) {
            XCTAssertEqual(try result(m.id)?["result"]?["exc_type"], "TimeLimitExceeded")
        }
    }

    /// A body's cancellation handler that reads the context's and the pool's state runs with
    /// no lock of theirs held: `revoke(terminate=True)` completes, REVOKED, and the slot runs
    /// the next task. Before, `Task.cancel()` ran the handler under the pool's condition and
    /// the context's progress lock, and these reads deadlocked the consumer.
    func testCancellationHandlerReadingWorkerStateDoesNotDeadlockTerminate() throws {
        final class PoolRef: @unchecked Sendable { weak var pool: ExecutorPool? }
        let ref = PoolRef()
        let started = LockedCounter()
        let seen = LockedBox<[String]>([])
        let worker = InProcessWorker(
            redis: redis, concurrency: 1, hostname: "w1@test",
            register: { r in
                r.register(
                    "handled_async",
                    async: { ctx in
                        try await withTaskCancellationHandler {
                            started.increment()
                            try await ctx.sleep(seconds: 3600)
                            return "woke"
                        } onCancel: {
                            let state =
                                "cancelled \(ctx.isCancelled) abandoned \(ctx.isAbandoned) started \(ctx.started != nil) running \(ref.pool?.running ?? -1)"
                            seen.modify { $0.append(state) }
                        }
                    })
            })
        ref.pool = worker.consumer.pool
        let consumer = worker.consumer
        RemoteControlListener(endpoint: redis.endpoint, logger: Logger(label: "test-control")) {
            consumer.control($0)
        }.start()
        let handled = TaskMessage(task: "handled_async")
        let next = TaskMessage(task: "add", args: [2, 2])
        try enqueue([handled, next])
        XCTAssertTrue(eventually { started.value == 1 })
        XCTAssertNil(try result(next.id), "one slot, taken")
        _ = try runPython("control_probe.py", [redis.url, "revoke", handled.id, "terminate"])
        XCTAssertTrue(try eventually { try self.result(handled.id)?["status"] == "REVOKED" })
        XCTAssertTrue(try eventually { try self.result(next.id)?["result"] == 4 }, "slot freed, consumer alive")
        XCTAssertEqual(seen.get().count, 1)
        XCTAssertTrue(
            seen.get().first?.hasPrefix("cancelled true abandoned true started true running ") ?? false, "\(seen.get())"
        )
        XCTAssertTrue(eventually { worker.consumer.pool.running == 0 })
        worker.stop()
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
    }

    /// A task revoked after the pool took it and before it started (the window in which
    /// `revoke` used to find it neither queued nor started, and let it run) never runs its
    /// body, sync or async, posts nothing, and frees its slot; a started task is not
    /// revoked that way. The consumer's revoke calls `revokeBeforeStart` in that window.
    func testTaskRevokedBeforeItStartsNeverRunsItsBody() throws {
        let ran = LockedBox<[String]>([])
        var registry = TaskRegistry()
        registry.register("body_sync") { ctx in
            ran.modify { $0.append(ctx.taskId) }
            return 1
        }
        registry.register(
            "body_async",
            async: { ctx in
                ran.modify { $0.append(ctx.taskId) }
                return 1
            })
        let outbox = Outbox()
        let settings = TaskContext.Settings(
            stepSeconds: 0, clock: ManualClock(CeleryTime.now()), logger: Logger(label: "test"), events: LockedBox(true)
        )
        let pool = ExecutorPool(size: 2)
        defer { pool.shutdown() }
        func context(_ name: String) throws -> TaskContext {
            TaskContext(
                message: TaskMessage(task: name), task: try XCTUnwrap(registry.task(named: name)), outbox: outbox,
                settings: settings)
        }
        let revoked = [try context("body_sync"), try context("body_async")]
        for ctx in revoked {
            XCTAssertTrue(ctx.revokeBeforeStart())
            XCTAssertFalse(ctx.revokeBeforeStart(), "once")
        }
        let control = [try context("body_sync"), try context("body_async")]
        pool.submit(contentsOf: revoked + control)
        XCTAssertTrue(eventually { ran.get().count == 2 && pool.queued == 0 && pool.running == 0 })
        XCTAssertEqual(Set(ran.get()), Set(control.map(\.taskId)), "only the control tasks ran")
        var entries: [Outbox.Entry] = []
        XCTAssertTrue(
            eventually {
                entries += outbox.take(waitingUpTo: 0)
                return entries.filter { $0.completes != nil }.count == 2
            })
        XCTAssertEqual(
            Set(entries.compactMap(\.completes)), Set(control.map(\.message.deliveryTag)),
            "only the control tasks posted")
        let startedEvents = entries.compactMap { $0.event?["uuid"]?.stringValue }
        XCTAssertEqual(Set(startedEvents), Set(control.map(\.taskId)), "no task-started event for a revoked one")
        for ctx in revoked { XCTAssertNil(ctx.started) }
        for ctx in control { XCTAssertFalse(ctx.revokeBeforeStart(), "started: not revoked before start") }
    }

    /// Past its soft time limit (the worker's clock moved), an awaiting task is cancelled:
    /// FAILURE SoftTimeLimitExceeded; one that catches the cancellation returns its own result.
    func testSoftTimeLimitCancelsAnAwaitingTask() throws {
        let clock = ManualClock(CeleryTime.now())
        let started = LockedCounter()
        let cancelled = LockedCounter()
        let worker = InProcessWorker(redis: redis, concurrency: 2, clock: clock) { r in
            Self.registerHang(started: started, cancelled: cancelled)(&r)
            r.register(
                "tidy_async",
                async: { ctx in
                    started.increment()
                    do {
                        try await ctx.sleep(seconds: 3600)
                    } catch is CancellationError {
                        return "stopped early"
                    }
                    return "woke"
                })
        }
        var hang = TaskMessage(task: "hang_async")
        hang.timeLimit = (60, nil)
        var tidy = TaskMessage(task: "tidy_async")
        tidy.timeLimit = (60, nil)
        try enqueue([hang, tidy])
        XCTAssertTrue(eventually { started.value == 2 })
        XCTAssertNil(try result(hang.id))
        XCTAssertNil(try result(tidy.id))
        clock.advance(60.5)
        XCTAssertTrue(
            try eventually { try self.result(hang.id) != nil && self.result(tidy.id) != nil })
        XCTAssertEqual(
            try result(hang.id)?["result"],
            ["exc_type": "SoftTimeLimitExceeded", "exc_message": [], "exc_module": "billiard.exceptions"])
        XCTAssertEqual(try result(hang.id)?["status"], "FAILURE")
        XCTAssertEqual(cancelled.value, 1)
        XCTAssertEqual(try result(tidy.id)?["status"], "SUCCESS")
        XCTAssertEqual(try result(tidy.id)?["result"], "stopped early")
        worker.stop()
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
    }

    /// Past its hard time limit an async task is cancelled, not abandoned on a thread:
    /// FAILURE TimeLimitExceeded, its slot runs the next task, no thread counted stuck.
    func testHardTimeLimitCancelsAnAsyncTask() throws {
        let clock = ManualClock(CeleryTime.now())
        let started = LockedCounter()
        let cancelled = LockedCounter()
        let worker = InProcessWorker(
            redis: redis, concurrency: 1, clock: clock,
            register: Self.registerHang(started: started, cancelled: cancelled))
        var hang = TaskMessage(task: "hang_async")
        hang.timeLimit = (nil, 10)
        let next = TaskMessage(task: "noop_async", args: [7])
        try enqueue([hang, next])
        XCTAssertTrue(eventually { started.value == 1 })
        XCTAssertNil(try result(next.id), "one slot, taken")
        clock.advance(10.5)
        XCTAssertTrue(try eventually { try self.result(next.id)?["result"] == 7 }, "slot freed")
        XCTAssertEqual(
            try result(hang.id)?["result"],
            ["exc_type": "TimeLimitExceeded", "exc_message": [10.0], "exc_module": "billiard.exceptions"])
        XCTAssertTrue(eventually { cancelled.value == 1 }, "the body saw its cancellation")
        XCTAssertTrue(eventually { worker.consumer.pool.abandonedThreads == 0 }, "its body ended: none stuck")
        XCTAssertTrue(eventually { worker.consumer.pool.running == 0 })
        worker.stop()
        XCTAssertEqual(try result(hang.id)?["status"], "FAILURE", "the cancelled body's outcome did not land")
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
    }

    /// Cold shutdown cancels the running async tasks and returns their deliveries to the queue.
    func testColdShutdownCancelsAsyncTasksAndReturnsThem() throws {
        let started = LockedCounter()
        let cancelled = LockedCounter()
        let worker = InProcessWorker(
            redis: redis, concurrency: 4, register: Self.registerHang(started: started, cancelled: cancelled))
        let messages = (0..<3).map { _ in TaskMessage(task: "hang_async") }
        try enqueue(messages)
        XCTAssertTrue(eventually { started.value == 3 })
        worker.consumer.stopNow()
        XCTAssertTrue(
            try eventually {
                try self.client.command("LLEN", "celery").integer == 3
                    && self.client.command("HLEN", "unacked").integer == 0
            }, "deliveries returned")
        XCTAssertTrue(eventually { cancelled.value == 3 }, "each body saw its cancellation")
        XCTAssertTrue(eventually { worker.consumer.pool.running == 0 })
        worker.stop()
        XCTAssertEqual(try client.resultCount(), 0, "a cancelled task stores nothing")
        let queued = try client.command("LRANGE", "celery", "0", "-1").elements ?? []
        let ids = Set(try queued.map { try TaskMessage.decode($0.bytes ?? []).id })
        XCTAssertEqual(ids, Set(messages.map(\.id)))
    }

    /// An async task that returns is SUCCESS with its result; one that throws is FAILURE with the cause.
    func testAsyncTaskOutcomes() throws {
        let worker = InProcessWorker(redis: redis) { r in
            r.register(
                "sum_async",
                async: { ctx in
                    let x = try ctx.int(0, "x")
                    await Task.yield()  // suspends: the rest runs as a continuation
                    return ["sum": .int(x + (try ctx.int(1, "y")))]
                })
            r.register(
                "fail_async",
                async: { ctx in
                    await Task.yield()
                    throw TaskFailure(type: "ValueError", message: "bad input")
                })
        }
        let ok = TaskMessage(task: "sum_async", args: [2, 3])
        let bad = TaskMessage(task: "fail_async")
        let missing = TaskMessage(task: "sum_async", args: [2])
        let builtin = TaskMessage(task: "noop_async", args: ["x"])
        try enqueue([ok, bad, missing, builtin])
        XCTAssertTrue(try eventually { try self.client.resultCount() == 4 })
        worker.stop()
        XCTAssertEqual(try result(ok.id)?["status"], "SUCCESS")
        XCTAssertEqual(try result(ok.id)?["result"], ["sum": 5])
        XCTAssertEqual(try result(bad.id)?["status"], "FAILURE")
        XCTAssertEqual(try result(bad.id)?["result"]?["exc_type"], "ValueError")
        XCTAssertEqual(try result(bad.id)?["result"]?["exc_message"], ["bad input"])
        XCTAssertEqual(try result(missing.id)?["result"]?["exc_type"], "TypeError")
        XCTAssertEqual(try result(builtin.id)?["result"], "x")
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
        XCTAssertEqual(worker.consumer.pool.threads, 0, "no thread started for async tasks")
    }

    /// A finished async task's context is not kept alive by its own Swift task (the handle
    /// it stores is cleared before it posts): at -c 1 × prefetch 1, of the contexts 50 tasks
    /// saw, at most the one the worker keeps for reuse is alive once they are done.
    func testFinishedAsyncContextsAreFreedOrReused() throws {
        final class Weak: @unchecked Sendable {
            weak var ctx: TaskContext?
            init(_ ctx: TaskContext) { self.ctx = ctx }
        }
        let seen = LockedBox<[Weak]>([])
        let worker = InProcessWorker(redis: redis, concurrency: 1, prefetch: 1) { r in
            r.register(
                "seen_async",
                async: { ctx in
                    seen.modify { $0.append(Weak(ctx)) }
                    return nil
                })
        }
        let messages = (0..<50).map { _ in TaskMessage(task: "seen_async") }
        try enqueue(messages)
        XCTAssertTrue(try eventually { try self.client.resultCount() == 50 })
        worker.stop()
        XCTAssertEqual(seen.get().count, 50)
        // Distinct objects: a reused context is seen by several tasks.
        func alive() -> Int { Set(seen.get().compactMap { $0.ctx.map(ObjectIdentifier.init) }).count }
        XCTAssertTrue(eventually { alive() <= 1 }, "\(alive()) contexts still alive")
    }

    /// Sync and async tasks share the slots: at -c 2 a sync task runs on a thread started
    /// for it while async ones run beside it, in arrival order.
    func testSyncAndAsyncShareTheSlots() throws {
        let gauge = Gauge()
        let release = LockedBox(false)
        let worker = InProcessWorker(redis: redis, concurrency: 2, prefetch: 4) { r in
            r.register("gated_sync") { _ in
                gauge.enter()
                defer { gauge.leave() }
                while !release.get() { Thread.sleep(forTimeInterval: 0.005) }
                return "sync"
            }
            r.register(
                "gated_async",
                async: { ctx in
                    gauge.enter()
                    defer { gauge.leave() }
                    while !release.get() { try await ctx.sleep(seconds: 0.005) }
                    return "async"
                })
        }
        let messages = [
            TaskMessage(task: "gated_sync"), TaskMessage(task: "gated_async"), TaskMessage(task: "gated_sync"),
            TaskMessage(task: "gated_async"),
        ]
        try enqueue(messages)
        XCTAssertTrue(eventually { gauge.current == 2 && worker.consumer.pool.queued == 2 })
        XCTAssertEqual(worker.consumer.pool.threads, 1, "one thread, for the one sync task running")
        release.set(true)
        XCTAssertTrue(try eventually { try self.client.resultCount() == 4 })
        XCTAssertEqual(gauge.peak, 2)
        XCTAssertLessThanOrEqual(worker.consumer.pool.threads, 2)
        for (m, r) in zip(messages, ["sync", "async", "sync", "async"]) {
            XCTAssertEqual(try result(m.id)?["result"], .string(r))
        }
        worker.stop()
    }
}
