import FastCore
import Foundation
import XCTest

/// Many workers, crashes and shutdowns, with real worker processes (or in-process ones on a
/// clock the test moves) on a real redis-server.
final class WorkerEngineTests: RedisTestCase {
    /// Each of 2,000 tasks has its result, and the two workers' success counters add up
    /// to 2,000: none ran twice.
    func testTwoWorkersShare2000TasksAndRunEachExactlyOnce() throws {
        let a = try MetricsWorker(redis: redis, extra: ["-n", "a@test"])
        let b = try MetricsWorker(redis: redis, extra: ["-n", "b@test"])
        let messages = (0..<2000).map { TaskMessage(task: "noop", args: [.int(Int64($0))]) }
        try enqueue(messages)
        XCTAssertTrue(try eventually(timeout: 60, interval: 0.1) { try self.client.resultCount() == 2000 })
        var ran = (a: 0, b: 0)
        XCTAssertTrue(
            try eventually(timeout: 10) {
                ran = (try a.succeeded("noop"), try b.succeeded("noop"))
                return ran.a + ran.b >= 2000
            })
        XCTAssertEqual(ran.a + ran.b, 2000, "runs: \(ran)")
        XCTAssertEqual(try a.received("noop") + b.received("noop"), 2000, "each delivered once")
        XCTAssertGreaterThan(ran.a, 0, "worker a took no work")
        XCTAssertGreaterThan(ran.b, 0, "worker b took no work")
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 0)
    }

    /// SIGKILL mid-task: the message stays in `unacked`; once its visibility timeout has
    /// passed on its clock, another worker restores it and runs it.
    func testKilledWorkersTaskRunsAgainElsewhereAfterVisibilityTimeout() throws {
        let a = try CelerisProcess.worker(redis: redis, extra: ["-n", "a@test", "--visibility-timeout", "2"], step: "0.5")
        let m = TaskMessage(task: "create_task", args: [4])
        try enqueue([m])
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id)?["status"] == "PROGRESS" })
        kill(a.process.processIdentifier, SIGKILL)
        a.process.waitUntilExit()
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 1)
        XCTAssertEqual(try client.command("HEXISTS", "unacked", m.deliveryTag).integer, 1)

        // b, in this process, on a clock held at the real time: the lease is not stale yet.
        let clock = ManualClock(CeleryTime.now())
        let runs = LockedCounter()
        let b = InProcessWorker(redis: redis, clock: clock, visibilityTimeout: 30, hostname: "b@test") { r in
            guard case .sync(let createTask) = r.task(named: "create_task")?.body else { return }
            r.register("create_task") { ctx in
                runs.increment()
                return try createTask(ctx)
            }
        }
        XCTAssertEqual(try client.command("HEXISTS", "unacked", m.deliveryTag).integer, 1)
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 0)
        XCTAssertEqual(try result(m.id)?["status"], "PROGRESS")
        clock.advance(32)  // past b's visibility timeout, whole seconds rounded up included
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id)?["status"] == "SUCCESS" })
        XCTAssertTrue(try eventually { try self.client.command("HLEN", "unacked").integer == 0 })
        b.stop()
        // Only in `unacked` when b started: b restored it, then claimed and ran it once.
        XCTAssertEqual(runs.value, 1)
        // What is left of a: the receipt of its last claim (read only by a worker of its name).
        XCTAssertEqual(
            try client.keys(),
            [
                ResultRecord.key(m.id), DeliveryClaim.receiptKey(hostname: "a@test"), "_kombu.binding.celery",
                "_kombu.binding_permanent.celery",
            ])
    }

    /// A Python Celery worker recovers a message a killed Celeris worker held.
    func testPythonWorkerRecoversMessageFromKilledCelerisWorker() throws {
        let a = try CelerisProcess.worker(redis: redis, extra: ["--visibility-timeout", "2"], step: "1")
        let m = TaskMessage(task: "create_task", args: [5])
        try enqueue([m])
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id)?["status"] == "PROGRESS" })
        kill(a.process.processIdentifier, SIGKILL)
        a.process.waitUntilExit()
        // Let the lease go stale before kombu's start-up restore: its score (whole seconds,
        // rounded up) more than the 2 s visibility timeout in the past.
        let lease = try XCTUnwrap(Double(try client.command("ZSCORE", "unacked_index", m.deliveryTag).text ?? ""))
        XCTAssertTrue(eventually(timeout: 10, interval: 0.05) { CeleryTime.now() - lease > 2.5 })
        let python = try PythonWorker.spawn(
            redis: redis, env: ["FIXTURE_STEP_SECONDS": "0.01", "FIXTURE_VISIBILITY_TIMEOUT": "2"])
        XCTAssertTrue(
            try eventually(timeout: 30) { try self.result(m.id)?["status"] == "SUCCESS" },
            "python worker:\n\(python.log)")
        XCTAssertTrue(try eventually(timeout: 5) { try self.client.pythonSuccesses(m.id) == 1 }, python.log)
        // Celery acknowledges after storing the result: the ack may trail the SUCCESS by a moment.
        XCTAssertTrue(try eventually(timeout: 5) { try self.client.command("HLEN", "unacked").integer == 0 })
        python.stop()
    }

    /// SIGTERM with prefetched messages: the running task finishes, the
    /// prefetched ones go back (marked redelivered), nothing runs twice.
    func testWarmShutdownReturnsPrefetchedAndFinishesRunning() throws {
        let a = try CelerisProcess.worker(redis: redis, extra: ["-c", "1", "--prefetch-multiplier", "4"], step: "0.4")
        let first = TaskMessage(task: "create_task", args: [3])
        let rest = (0..<5).map { _ in TaskMessage(task: "create_task", args: [1]) }
        try enqueue([first] + rest)
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(first.id)?["status"] == "PROGRESS" })
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 4, "claimed the prefetch window")
        kill(a.process.processIdentifier, SIGTERM)
        a.process.waitUntilExit()
        XCTAssertEqual(a.process.terminationStatus, 0)
        XCTAssertEqual(try result(first.id)?["status"], "SUCCESS")
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
        XCTAssertEqual(try client.command("ZCARD", "unacked_index").integer, 0)
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 5)
        // a ran `first` alone: none of the others has a result.
        for m in rest { XCTAssertNil(try result(m.id)) }
        // The 3 it had prefetched went back marked redelivered (2 were never claimed).
        let returned = try client.command("LRANGE", "celery", "0", "-1").elements?.compactMap(\.bytes) ?? []
        XCTAssertEqual(returned.filter { (try? JSONParser.parse($0))?["headers"]?["redelivered"] == true }.count, 3)

        let b = try MetricsWorker(redis: redis, step: "0")
        XCTAssertTrue(
            try eventually(timeout: 15) { try rest.allSatisfy { try self.result($0.id)?["status"] == "SUCCESS" } })
        // b ran the five others, each once, and not `first` again.
        XCTAssertTrue(try eventually(timeout: 5) { try b.succeeded("create_task") == rest.count })
        XCTAssertEqual(try b.received("create_task"), rest.count)
    }

    /// Celery runs an ETA task once per visibility timeout that passes while
    /// it waits; Celeris keeps its lease and runs it once. Two workers share a clock
    /// the test moves half a visibility timeout at a time.
    func testCountdownLongerThanVisibilityTimeoutRunsExactlyOnce() throws {
        let clock = ManualClock(CeleryTime.now())
        let runs = LockedCounter()
        func worker(_ name: String) -> InProcessWorker {
            InProcessWorker(redis: redis, clock: clock, visibilityTimeout: 1, hostname: name) { r in
                r.register("counted_add") { ctx in
                    runs.increment()
                    return .int(try ctx.int(0, "x") + ctx.int(1, "y"))
                }
            }
        }
        let a = worker("a@test")
        let b = worker("b@test")
        var m = TaskMessage(task: "counted_add", args: [1, 2])
        let eta = clock.now() + 3.5
        m.eta = CeleryTime.isoformat(eta)
        try enqueue([m])
        // While it waits for its ETA (3.5 visibility timeouts) the delivery stays held, its
        // lease renewed, and never goes back to the queue: no worker restores it.
        XCTAssertTrue(try eventually { try self.client.heldMessages().keys.sorted() == [m.deliveryTag] })
        for step in 1...6 {
            clock.advance(0.5)
            XCTAssertTrue(
                try eventually { try self.client.lease(m.deliveryTag) == clock.now().rounded(.up) },
                "lease renewed at step \(step)")
            XCTAssertEqual(try client.heldMessages().keys.sorted(), [m.deliveryTag], "step \(step)")
            XCTAssertEqual(try client.command("LLEN", "celery").integer, 0, "step \(step)")
            XCTAssertNil(try result(m.id), "step \(step)")
        }
        clock.advance(1)
        XCTAssertTrue(try eventually { try self.result(m.id) != nil })
        XCTAssertTrue(try eventually { try self.client.command("HLEN", "unacked").integer == 0 })
        a.stop()
        b.stop()
        let done = try XCTUnwrap(try result(m.id))
        XCTAssertEqual(done["result"], 3)
        let doneAt = try XCTUnwrap(done["date_done"]?.stringValue.flatMap(CeleryTime.parse))
        XCTAssertGreaterThanOrEqual(doneAt, eta, "ran before its ETA")
        XCTAssertEqual(runs.value, 1, "run once: never restored")
        XCTAssertEqual(
            try client.keys(), [ResultRecord.key(m.id), "_kombu.binding.celery", "_kombu.binding_permanent.celery"])
    }

    /// A busy worker sends its next claim before it reads the last write's replies, yet
    /// never holds more than its prefetch window: `unacked`, sampled all through a drain,
    /// stays within concurrency × multiplier.
    func testDrainNeverClaimsBeyondThePrefetchWindow() throws {
        let a = try CelerisProcess.worker(redis: redis, extra: ["-c", "2", "--prefetch-multiplier", "3"])
        let messages = (0..<3000).map { TaskMessage(task: "noop", args: [.int(Int64($0))]) }
        try enqueue(messages)
        var most = 0
        var samples = 0
        XCTAssertTrue(
            try eventually(timeout: 60, interval: 0) {
                // (claiming by move, a batch sits in a claiming list until its records are written)
                let held = try self.client.pipeline([
                    ["HLEN", "unacked"], ["LLEN", "celery"], ["EXISTS", ClaimByMove.registryKey],
                ])
                most = max(most, Int(held[0].integer ?? 0))
                samples += 1
                return held[1].integer == 0 && held[0].integer == 0 && held[2].integer == 0
            }, a.log)
        XCTAssertLessThanOrEqual(most, 6, "\(samples) samples")
        XCTAssertGreaterThan(most, 1, "the window was used (\(samples) samples)")
        XCTAssertNotNil(try result(messages.last!.id))
    }

    /// Workers with different visibility timeouts share a broker: a peer with 2 s leaves
    /// a live worker's task alone for 5 s of their shared clock, since that worker renews
    /// its lease every second.
    func testShortVisibilityTimeoutPeerLeavesALiveWorkersTaskAlone() throws {
        let clock = ManualClock(CeleryTime.now())
        let release = DispatchSemaphore(value: 0)
        let runs = (a: LockedCounter(), b: LockedCounter())
        let a = InProcessWorker(redis: redis, clock: clock, hostname: "a@test") { r in
            r.register("held") { _ in
                runs.a.increment()
                release.wait()
                return "done"
            }
        }
        let m = TaskMessage(task: "held")
        try enqueue([m])
        XCTAssertTrue(eventually { runs.a.value == 1 })
        let b = InProcessWorker(redis: redis, clock: clock, visibilityTimeout: 2, hostname: "b@test") { r in
            r.register("held") { _ in
                runs.b.increment()
                return "run twice"
            }
        }
        for step in 1...5 {
            clock.advance(1)
            XCTAssertTrue(
                try eventually { try self.client.lease(m.deliveryTag) == clock.now().rounded(.up) },
                "lease renewed at step \(step)")
            XCTAssertEqual(try client.heldMessages().keys.sorted(), [m.deliveryTag], "step \(step)")
            XCTAssertEqual(try client.command("LLEN", "celery").integer, 0, "step \(step)")
        }
        release.signal()
        XCTAssertTrue(try eventually { try self.result(m.id)?["status"] == "SUCCESS" })
        XCTAssertTrue(try eventually { try self.client.command("HLEN", "unacked").integer == 0 })
        a.stop()
        b.stop()
        XCTAssertEqual(try result(m.id)?["result"], "done")
        // b never restored and took it.
        XCTAssertEqual(runs.a.value, 1)
        XCTAssertEqual(runs.b.value, 0)
        XCTAssertEqual(
            try client.keys(), [ResultRecord.key(m.id), "_kombu.binding.celery", "_kombu.binding_permanent.celery"])
    }

    /// A delivery returned to its queue while its worker still runs it, and claimed back by
    /// that worker, runs once: the running task's ack clears the claim's new `unacked` entry.
    func testDeliveryClaimedBackWhileRunningRunsOnce() throws {
        let a = try MetricsWorker(redis: redis, extra: ["-n", "a@test", "-c", "2"], step: "0.5")
        let m = TaskMessage(task: "create_task", args: [4])
        try enqueue([m])
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id)?["status"] == "PROGRESS" })
        // What a peer's recovery pass does to a stale lease.
        XCTAssertEqual(try DeliveryRestore().returnDeliveries([m.deliveryTag], on: client), 1)
        // a claims it back while the first run goes on: held again, the queue empty.
        XCTAssertTrue(
            try eventually(timeout: 10) {
                try self.client.command("LLEN", "celery").integer == 0
                    && self.client.command("HEXISTS", "unacked", m.deliveryTag).integer == 1
            }, a.log)
        XCTAssertEqual(try result(m.id)?["status"], "PROGRESS", "claimed back while still running")
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id)?["status"] == "SUCCESS" }, a.log)
        XCTAssertTrue(try eventually(timeout: 5) { try self.client.command("HLEN", "unacked").integer == 0 })
        XCTAssertEqual(try client.command("ZCARD", "unacked_index").integer, 0)
        // Once a gauge sample shows nothing running or waiting, a second run would have
        // been counted (concurrency 2: it would have started at once).
        XCTAssertTrue(
            try eventually(timeout: 10, interval: 0.1) {
                let s = try a.metrics()
                return s["celeris_tasks_in_flight"] == 0 && s["celeris_tasks_prefetched"] == 0
                    && s["celeris_tasks_succeeded_total{task=\"create_task\"}"] == 1
            }, a.log)
        XCTAssertEqual(try a.succeeded("create_task"), 1, a.log)
    }

    /// A second SIGTERM is a cold shutdown: every held message, the running one included, goes back.
    func testColdShutdownReturnsEveryHeldMessage() throws {
        // Celery's window set (4 per slot): by default a worker holds no more long tasks than it runs.
        let a = try CelerisProcess.worker(redis: redis, extra: ["-c", "1", "--prefetch-multiplier", "4"], step: "1")
        let messages = (0..<3).map { _ in TaskMessage(task: "create_task", args: [30]) }
        try enqueue(messages)
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(messages[0].id)?["status"] == "PROGRESS" })
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 3, "all three held")
        kill(a.process.processIdentifier, SIGTERM)
        // The warm shutdown returns the two unstarted ones and waits for the running one.
        XCTAssertTrue(try eventually(timeout: 10) { try self.client.command("LLEN", "celery").integer == 2 }, a.log)
        XCTAssertTrue(a.isRunning, "still running its task")
        kill(a.process.processIdentifier, SIGTERM)
        a.process.waitUntilExit()
        // The cold shutdown returned the running one too.
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 3)
        XCTAssertEqual(try result(messages[0].id)?["status"], "PROGRESS", "stopped mid-run")
    }

    /// "And vice versa": a Python worker (acks_late) killed mid-task; a Celeris worker restores and runs it.
    func testCelerisRecoversMessageFromKilledPythonWorker() throws {
        let python = try PythonWorker.spawn(
            redis: redis,
            env: ["FIXTURE_STEP_SECONDS": "1", "FIXTURE_ACKS_LATE": "1", "FIXTURE_VISIBILITY_TIMEOUT": "2"])
        let m = TaskMessage(task: "create_task", args: [10])
        try enqueue([m])
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id)?["status"] == "PROGRESS" }, python.log)
        kill(python.process.processIdentifier, SIGKILL)
        python.process.waitUntilExit()
        XCTAssertEqual(try client.command("HEXISTS", "unacked", m.deliveryTag).integer, 1)
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 0, "only in unacked")
        let b = try MetricsWorker(redis: redis, extra: ["--visibility-timeout", "2"], step: "0")
        XCTAssertTrue(try eventually(timeout: 15) { try self.result(m.id)?["status"] == "SUCCESS" }, b.log)
        // b restored it from `unacked`, then claimed and ran it once.
        XCTAssertTrue(try eventually(timeout: 5) { try b.succeeded("create_task") == 1 }, b.log)
        XCTAssertEqual(try b.received("create_task"), 1)
        XCTAssertEqual(try client.pythonSuccesses(m.id), 0, "the killed Python worker never finished it")
        XCTAssertTrue(try eventually(timeout: 5) { try self.client.command("HLEN", "unacked").integer == 0 })
    }

    /// A task that blocks (sleep) holds one slot; the others keep running and publishing.
    func testBlockingTaskDoesNotStallTheOthers() throws {
        let worker = try CelerisProcess.worker(redis: redis, extra: ["-c", "2"], step: "5")
        let slow = TaskMessage(task: "create_task", args: [2])
        let quick = (0..<20).map { TaskMessage(task: "add", args: [.int(Int64($0)), 0]) }
        try enqueue([slow] + quick)
        XCTAssertTrue(
            try eventually(timeout: 4) { try quick.allSatisfy { try self.result($0.id)?["status"] == "SUCCESS" } })
        XCTAssertEqual(try result(slow.id)?["status"], "PROGRESS")
        XCTAssertTrue(worker.isRunning)
    }
}
