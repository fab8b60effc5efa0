import FastCore
import Foundation
import XCTest

/// Many workers, crashes and shutdowns, with real worker processes on a real redis-server.
final class WorkerEngineTests: RedisTestCase {
    /// How many times a worker log says each task id succeeded ("Task noop[<id>] succeeded in …").
    func successes(_ worker: Spawned) -> [String: Int] {
        var counts: [String: Int] = [:]
        for line in worker.log.split(separator: "\n") where line.contains("] succeeded in") {
            guard let task = line.range(of: " Task ")?.upperBound, let open = line[task...].firstIndex(of: "["),
                let close = line[open...].firstIndex(of: "]")
            else { continue }
            counts[String(line[line.index(after: open)..<close]), default: 0] += 1
        }
        return counts
    }

    /// How many times the workers' logs say a task id succeeded.
    func runs(_ id: String, in workers: [Spawned]) -> Int {
        workers.reduce(0) { $0 + (successes($1)[id] ?? 0) }
    }

    func testTwoWorkersShare2000TasksAndRunEachExactlyOnce() throws {
        let a = try Celeris.worker(redis: redis, extra: ["-n", "a@test"])
        let b = try Celeris.worker(redis: redis, extra: ["-n", "b@test"])
        let messages = (0..<2000).map { TaskMessage(task: "noop", args: [.int(Int64($0))]) }
        try enqueue(messages)
        XCTAssertTrue(
            try eventually(timeout: 60, interval: 0.1) {
                try self.client.command("EVAL", "return #redis.call('KEYS', 'celery-task-meta-*')", "0").integer == 2000
            })
        let countsA = successes(a)
        let countsB = successes(b)
        var perWorker = [0, 0]
        for m in messages {
            let inA = countsA[m.id] ?? 0
            let inB = countsB[m.id] ?? 0
            XCTAssertEqual(inA + inB, 1, "task \(m.id) ran \(inA + inB) times")
            perWorker[0] += inA
            perWorker[1] += inB
        }
        XCTAssertGreaterThan(perWorker[0], 0, "worker a took no work")
        XCTAssertGreaterThan(perWorker[1], 0, "worker b took no work")
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 0)
    }

    /// SIGKILL mid-task: the message stays in `unacked`; after the visibility
    /// timeout another worker restores it and runs it.
    func testKilledWorkersTaskRunsAgainElsewhereAfterVisibilityTimeout() throws {
        let a = try Celeris.worker(redis: redis, extra: ["-n", "a@test", "--visibility-timeout", "2"], step: "0.5")
        let m = TaskMessage(task: "create_task", args: [4])
        try enqueue([m])
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id)?["status"] == "PROGRESS" })
        kill(a.process.processIdentifier, SIGKILL)
        a.process.waitUntilExit()
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 1)
        XCTAssertEqual(try client.command("HEXISTS", "unacked", m.deliveryTag).integer, 1)

        let b = try Celeris.worker(redis: redis, extra: ["-n", "b@test", "--visibility-timeout", "2"], step: "0.05")
        XCTAssertTrue(try eventually(timeout: 15) { try self.result(m.id)?["status"] == "SUCCESS" }, b.log)
        XCTAssertTrue(b.log.contains("restored 1 unacknowledged message"), b.log)
        XCTAssertEqual(runs(m.id, in: [b]), 1)
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
    }

    /// A Python Celery worker recovers a message a killed Celeris worker held.
    func testPythonWorkerRecoversMessageFromKilledCelerisWorker() throws {
        let a = try Celeris.worker(redis: redis, extra: ["--visibility-timeout", "2"], step: "1")
        let m = TaskMessage(task: "create_task", args: [5])
        try enqueue([m])
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id)?["status"] == "PROGRESS" })
        kill(a.process.processIdentifier, SIGKILL)
        a.process.waitUntilExit()
        // Let the lease go stale before kombu's start-up restore (leases are whole seconds, rounded up).
        Thread.sleep(forTimeInterval: 3.5)
        let python = try Spawned(
            try TestPaths.python(),
            [
                "-m", "celery", "-A", "fixture_app", "worker", "-P", "solo", "-c", "1", "--loglevel=info", "-n",
                "py@test",
                "--without-mingle", "--without-gossip",
            ],
            env: ["CELERY_BROKER_URL": redis.url, "FIXTURE_STEP_SECONDS": "0.01", "FIXTURE_VISIBILITY_TIMEOUT": "2"],
            cwd: TestPaths.fixtures, name: "pyworker")
        XCTAssertTrue(
            try eventually(timeout: 30) { try self.result(m.id)?["status"] == "SUCCESS" },
            "python worker:\n\(python.log)")
        XCTAssertTrue(python.log.contains("Task create_task[\(m.id)] received"), python.log)
        // Celery acknowledges after storing the result: the ack may trail the SUCCESS by a moment.
        XCTAssertTrue(try eventually(timeout: 5) { try self.client.command("HLEN", "unacked").integer == 0 })
        python.stop()
    }

    /// SIGTERM with prefetched messages: the running task finishes, the
    /// prefetched ones go back (marked redelivered), nothing runs twice.
    func testWarmShutdownReturnsPrefetchedAndFinishesRunning() throws {
        let a = try Celeris.worker(redis: redis, extra: ["-c", "1", "--prefetch-multiplier", "4"], step: "0.4")
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
        for m in rest { XCTAssertNil(try result(m.id)) }
        XCTAssertTrue(a.log.contains("returned 3 unstarted message(s)"), a.log)
        let returned = try client.command("LRANGE", "celery", "0", "-1").elements?.compactMap(\.bytes) ?? []
        XCTAssertEqual(returned.filter { (try? JSONParser.parse($0))?["headers"]?["redelivered"] == true }.count, 3)

        let b = try Celeris.worker(redis: redis, step: "0")
        XCTAssertTrue(
            try eventually(timeout: 15) { try rest.allSatisfy { try self.result($0.id)?["status"] == "SUCCESS" } })
        for m in [first] + rest { XCTAssertEqual(runs(m.id, in: [a, b]), 1, m.id) }
    }

    /// Celery runs an ETA task once per visibility timeout that passes while
    /// it waits; Celeris keeps its lease and runs it once.
    func testCountdownLongerThanVisibilityTimeoutRunsExactlyOnce() throws {
        let a = try Celeris.worker(redis: redis, extra: ["-n", "a@test", "--visibility-timeout", "1"])
        let b = try Celeris.worker(redis: redis, extra: ["-n", "b@test", "--visibility-timeout", "1"])
        var m = TaskMessage(task: "add", args: [1, 2])
        m.eta = CeleryTime.isoformat(CeleryTime.now() + 3.5)
        try enqueue([m])
        Thread.sleep(forTimeInterval: 2)
        XCTAssertNil(try result(m.id), "ran before its ETA")
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id)?["result"] == 3 })
        Thread.sleep(forTimeInterval: 2)
        XCTAssertEqual(runs(m.id, in: [a, b]), 1)
        XCTAssertFalse(a.log.contains("restored") || b.log.contains("restored"))
    }

    /// A busy worker sends its next claim before it reads the last write's replies, yet
    /// never holds more than its prefetch window: `unacked`, sampled all through a drain,
    /// stays within concurrency × multiplier.
    func testDrainNeverClaimsBeyondThePrefetchWindow() throws {
        let a = try Celeris.worker(redis: redis, extra: ["-c", "2", "--prefetch-multiplier", "3"])
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
    /// a live worker's 4-second task alone, since that worker renews its lease every second.
    func testShortVisibilityTimeoutPeerLeavesALiveWorkersTaskAlone() throws {
        let a = try Celeris.worker(redis: redis, extra: ["-n", "a@test"], step: "1")
        let m = TaskMessage(task: "create_task", args: [4])
        try enqueue([m])
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id)?["status"] == "PROGRESS" })
        let b = try Celeris.worker(redis: redis, extra: ["-n", "b@test", "--visibility-timeout", "2"], step: "0.01")
        XCTAssertTrue(try eventually(timeout: 15) { try self.result(m.id)?["status"] == "SUCCESS" }, a.log)
        XCTAssertEqual(runs(m.id, in: [a, b]), 1, b.log)
        XCTAssertFalse(b.log.contains("restored"), b.log)
        XCTAssertTrue(try eventually(timeout: 5) { try self.client.command("HLEN", "unacked").integer == 0 })
    }

    /// A delivery returned to its queue while its worker still runs it, and claimed back by
    /// that worker, runs once: the running task's ack clears the claim's new `unacked` entry.
    func testDeliveryClaimedBackWhileRunningRunsOnce() throws {
        let a = try Celeris.worker(redis: redis, extra: ["-n", "a@test", "-c", "2"], step: "0.5")
        let m = TaskMessage(task: "create_task", args: [4])
        try enqueue([m])
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id)?["status"] == "PROGRESS" })
        // What a peer's recovery pass does to a stale lease.
        XCTAssertEqual(try DeliveryRestore().returnDeliveries([m.deliveryTag], on: client), 1)
        XCTAssertTrue(try eventually(timeout: 10) { a.log.contains("claimed again") }, a.log)
        XCTAssertEqual(try client.command("HEXISTS", "unacked", m.deliveryTag).integer, 1)
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 0)
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id)?["status"] == "SUCCESS" }, a.log)
        XCTAssertTrue(try eventually(timeout: 5) { try self.client.command("HLEN", "unacked").integer == 0 })
        XCTAssertEqual(try client.command("ZCARD", "unacked_index").integer, 0)
        Thread.sleep(forTimeInterval: 2.5)  // a second run would have finished by now
        XCTAssertEqual(runs(m.id, in: [a]), 1, a.log)
    }

    /// A second SIGTERM is a cold shutdown: every held message, the running one included, goes back.
    func testColdShutdownReturnsEveryHeldMessage() throws {
        let a = try Celeris.worker(redis: redis, extra: ["-c", "1"], step: "1")
        let messages = (0..<3).map { _ in TaskMessage(task: "create_task", args: [30]) }
        try enqueue(messages)
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(messages[0].id)?["status"] == "PROGRESS" })
        kill(a.process.processIdentifier, SIGTERM)
        Thread.sleep(forTimeInterval: 0.3)
        kill(a.process.processIdentifier, SIGTERM)
        a.process.waitUntilExit()
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 3)
        XCTAssertTrue(a.log.contains("cold shutdown: returned 1 message"), a.log)
    }

    /// "And vice versa": a Python worker (acks_late) killed mid-task; a Celeris worker restores and runs it.
    func testCelerisRecoversMessageFromKilledPythonWorker() throws {
        let python = try Spawned(
            try TestPaths.python(),
            [
                "-m", "celery", "-A", "fixture_app", "worker", "-P", "solo", "-c", "1", "--loglevel=info", "-n",
                "py@test",
                "--without-mingle", "--without-gossip",
            ],
            env: [
                "CELERY_BROKER_URL": redis.url, "FIXTURE_STEP_SECONDS": "1", "FIXTURE_ACKS_LATE": "1",
                "FIXTURE_VISIBILITY_TIMEOUT": "2",
            ], cwd: TestPaths.fixtures, name: "pyworker")
        XCTAssertTrue(eventually(timeout: 30) { python.log.contains("ready.") }, python.log)
        let m = TaskMessage(task: "create_task", args: [10])
        try enqueue([m])
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id)?["status"] == "PROGRESS" }, python.log)
        kill(python.process.processIdentifier, SIGKILL)
        python.process.waitUntilExit()
        XCTAssertEqual(try client.command("HEXISTS", "unacked", m.deliveryTag).integer, 1)
        let b = try Celeris.worker(redis: redis, extra: ["--visibility-timeout", "2"], step: "0")
        XCTAssertTrue(try eventually(timeout: 15) { try self.result(m.id)?["status"] == "SUCCESS" }, b.log)
        XCTAssertTrue(b.log.contains("restored 1 unacknowledged message"), b.log)
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
    }

    /// A task that blocks (sleep) holds one slot; the others keep running and publishing.
    func testBlockingTaskDoesNotStallTheOthers() throws {
        let worker = try Celeris.worker(redis: redis, extra: ["-c", "2"], step: "5")
        let slow = TaskMessage(task: "create_task", args: [2])
        let quick = (0..<20).map { TaskMessage(task: "add", args: [.int(Int64($0)), 0]) }
        try enqueue([slow] + quick)
        XCTAssertTrue(
            try eventually(timeout: 4) { try quick.allSatisfy { try self.result($0.id)?["status"] == "SUCCESS" } })
        XCTAssertEqual(try result(slow.id)?["status"], "PROGRESS")
        XCTAssertTrue(worker.isRunning)
    }
}
