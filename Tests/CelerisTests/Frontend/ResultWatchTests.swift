import Foundation
import Logging
import XCTest

@testable import FastCore

/// `ResultWatch` and `ResultSubscriber.barrier` on a real loop thread against a real
/// redis-server: snapshot, order, dedupe, the confirmation-to-read window, reconnects.
final class ResultWatchTests: RedisTestCase {
    var loop: WatchLoop!

    override func setUpWithError() throws {
        try super.setUpWithError()
        let wl = try WatchLoop(endpoint: redis.endpoint)
        loop = wl
        XCTAssertTrue(eventually(timeout: 10) { wl.isUp }, "watch connected")
    }

    override func tearDown() {
        XCTAssertTrue(loop.stop(), "the watch loop's thread ended")
        loop = nil
        super.tearDown()
    }

    /// A Celery-shaped record.
    static func record(_ id: String, _ state: String, _ result: String = "null") -> String {
        #"{"status": "\#(state)", "result": \#(result), "traceback": null, "children": [], "date_done": null, "task_id": "\#(id)"}"#
    }

    /// Store and publish as Celery's RedisBackend does (MULTI SETEX PUBLISH EXEC).
    func store(_ id: String, _ state: String, _ result: String = "null", publish: Bool = true) throws {
        let key = ResultRecord.key(id)
        let rec = Self.record(id, state, result)
        _ = try client.pipeline(
            [["MULTI"], ["SETEX", key, "600", rec]] + (publish ? [["PUBLISH", key, rec]] : []) + [["EXEC"]])
    }

    func testBarrierComesAfterEveryEarlierMessageAndFailsWhenTheLinkDrops() throws {
        let wl = loop!
        let seen = LockedBox(0)
        let confirmed = LockedBox(false)
        try wl.onLoop {
            wl.watch.subscriber.onMessage = { _, _ in seen.modify { $0 += 1 } }
            wl.watch.subscriber.onConfirmed = { _ in confirmed.set(true) }
            wl.watch.subscriber.subscribe("barrier-test")
        }
        XCTAssertTrue(eventually { confirmed.get() })
        _ = try client.pipeline(
            Array(repeating: ["PUBLISH", "barrier-test", String(repeating: "x", count: 200)], count: 5000))
        let atBarrier = LockedBox<(Bool, Int)?>(nil)
        try wl.onLoop { wl.watch.subscriber.barrier { ok in atBarrier.set((ok, seen.get())) } }
        XCTAssertTrue(eventually { atBarrier.get() != nil })
        XCTAssertEqual(atBarrier.get()?.0, true)
        XCTAssertEqual(atBarrier.get()?.1, 5000, "every message published before the barrier arrived before it")

        // Redis runs no client's command (CLIENT PAUSE): the barrier is owed when the link drops → false.
        XCTAssertEqual(try client.command("CLIENT", "PAUSE", "10000", "ALL").text, "OK")
        let failed = LockedBox<Bool?>(nil)
        try wl.onLoop { wl.watch.subscriber.barrier { ok in failed.set(ok) } }
        redis.stop()
        XCTAssertTrue(eventually { failed.get() != nil })
        XCTAssertEqual(failed.get(), false)
        XCTAssertTrue(eventually { !wl.isUp })
        let whileDown = LockedBox<Bool?>(nil)
        try wl.onLoop { wl.watch.subscriber.barrier { ok in whileDown.set(ok) } }
        XCTAssertEqual(whileDown.get(), false, "a barrier asked while down fails at once")
    }

    func testSnapshotThenEveryLaterStateInOrderOnceAndNothingAfterTheFinal() throws {
        let wl = loop!
        try store("a", "PROGRESS", #"{"progress": 1}"#)
        let first = try wl.watchCollecting("a")
        let pending = try wl.watchCollecting("nothing-yet")
        XCTAssertTrue(eventually { first.get().count == 1 && pending.get().count == 1 })
        XCTAssertEqual(first.get(), [Self.record("a", "PROGRESS", #"{"progress": 1}"#)])
        XCTAssertEqual(pending.get(), ["PENDING"])
        try store("a", "PROGRESS", #"{"progress": 1}"#)  // the same bytes again: skipped
        try store("a", "PROGRESS", #"{"progress": 2}"#)
        let second = try wl.watchCollecting("a")  // joins a confirmed task: its own snapshot
        XCTAssertTrue(eventually { second.get().count == 1 })
        XCTAssertEqual(second.get(), [Self.record("a", "PROGRESS", #"{"progress": 2}"#)])
        try store("a", "SUCCESS", "5")
        try store("a", "PROGRESS", #"{"progress": 3}"#)  // after the final state: nothing
        try store("nothing-yet", "SUCCESS", "1")
        XCTAssertTrue(eventually { pending.get().count == 2 })
        let expected = [
            Self.record("a", "PROGRESS", #"{"progress": 1}"#), Self.record("a", "PROGRESS", #"{"progress": 2}"#),
            Self.record("a", "SUCCESS", "5"),
        ]
        XCTAssertEqual(first.get(), expected)
        XCTAssertEqual(second.get(), Array(expected.dropFirst()))
        XCTAssertEqual(pending.get(), ["PENDING", Self.record("nothing-yet", "SUCCESS", "1")])
        XCTAssertEqual(try wl.onLoop { wl.watch.watchedTasks }, 2)
    }

    /// The window made real: the record is written and published by the hook that runs
    /// after the confirmation and right before the read; it is delivered once.
    func testARecordWrittenBetweenConfirmationAndReadIsDeliveredOnce() throws {
        let wl = loop!
        let writer = Unchecked(try redis.client())
        try wl.onLoop {
            wl.watch.beforeRead = { ids in
                for id in ids where id.hasPrefix("window") {
                    let key = ResultRecord.key(id)
                    // window-progress: two states in the window, the read sees the second (P = [6, 7]).
                    let states = id == "window-progress" ? [("PROGRESS", "6"), ("PROGRESS", "7")] : [("SUCCESS", "7")]
                    for (state, result) in states {
                        let rec = Self.record(id, state, result)
                        _ = try? writer.value.pipeline([
                            ["MULTI"], ["SETEX", key, "600", rec], ["PUBLISH", key, rec], ["EXEC"],
                        ])
                    }
                }
            }
        }
        let final = try wl.watchCollecting("window-final")
        let progress = try wl.watchCollecting("window-progress")
        XCTAssertTrue(eventually { final.get().count == 1 && progress.get().count == 2 })
        try store("window-progress", "SUCCESS", "8")
        XCTAssertTrue(eventually { progress.get().count == 3 })
        XCTAssertEqual(final.get(), [Self.record("window-final", "SUCCESS", "7")], "read and published: once")
        XCTAssertEqual(
            progress.get(),
            [
                Self.record("window-progress", "PROGRESS", "6"), Self.record("window-progress", "PROGRESS", "7"),
                Self.record("window-progress", "SUCCESS", "8"),
            ], "the states held in the window, in order, after no older snapshot")
    }

    /// The subscriber's link is killed; while it is down one task changes (its PUBLISH is lost),
    /// another is rewritten with the same bytes. After the reconnect only the change arrives.
    func testAfterAReconnectOnlyWhatChangedIsDelivered() throws {
        let wl = loop!
        try store("same", "PROGRESS", "1")
        try store("changed", "PROGRESS", "1")
        let same = try wl.watchCollecting("same")
        let changed = try wl.watchCollecting("changed")
        XCTAssertTrue(eventually { same.get().count == 1 && changed.get().count == 1 })
        let readsBefore = try wl.onLoop { wl.watch.reads }
        let killed = try client.pipeline([
            ["CLIENT", "KILL", "TYPE", "pubsub"],
            ["SETEX", ResultRecord.key("same"), "600", Self.record("same", "PROGRESS", "1")],
            ["PUBLISH", ResultRecord.key("same"), Self.record("same", "PROGRESS", "1")],
            ["SETEX", ResultRecord.key("changed"), "600", Self.record("changed", "PROGRESS", "2")],
            ["PUBLISH", ResultRecord.key("changed"), Self.record("changed", "PROGRESS", "2")],
        ])
        XCTAssertEqual(killed.first?.integer, 1, "the watch's subscriber connection was killed")
        XCTAssertTrue(eventually { changed.get().count == 2 })
        XCTAssertTrue(try eventually { try wl.onLoop { wl.watch.reads } > readsBefore }, "read again")
        try store("same", "SUCCESS", "3")
        XCTAssertTrue(eventually { same.get().count == 2 })
        XCTAssertEqual(same.get(), [Self.record("same", "PROGRESS", "1"), Self.record("same", "SUCCESS", "3")])
        XCTAssertEqual(
            changed.get(), [Self.record("changed", "PROGRESS", "1"), Self.record("changed", "PROGRESS", "2")])
    }

    /// Redis restarts (empty: nothing persisted): the watcher is read again (PENDING now) and
    /// then gets the final state written after the restart, once.
    func testRedisRestartReadsAgainWithoutDuplicates() throws {
        let wl = loop!
        try store("r", "PROGRESS", "1")
        let r = try wl.watchCollecting("r")
        XCTAssertTrue(eventually { r.get().count == 1 })
        redis.stop()
        XCTAssertTrue(eventually { !wl.isUp })
        try redis.start()
        client = try redis.client()
        XCTAssertTrue(eventually { r.get().count == 2 }, "read again after the reconnect")
        try store("r", "SUCCESS", "2")
        XCTAssertTrue(eventually { r.get().count == 3 })
        try store("r", "SUCCESS", "2")  // the same final state again: not delivered
        XCTAssertEqual(try wl.barrier(), true, "every earlier message handled")
        XCTAssertEqual(r.get(), [Self.record("r", "PROGRESS", "1"), "PENDING", Self.record("r", "SUCCESS", "2")])
    }

    /// 2,000 tasks watched while another thread writes their PROGRESS + SUCCESS states (where
    /// each write falls against each task's set-up is not controlled here: the window itself is
    /// driven through `beforeRead` above): every watcher's states are an in-order subsequence of
    /// what was written, without repeats, ending with the stored final record; reads were
    /// batched (≤ 256 keys each).
    func testTasksWatchedDuringABurstOfWritesEndWithTheStoredRecord() throws {
        let wl = loop!
        let ids = (0..<2000).map { "burst-\($0)" }
        let boxes = LockedBox<[String: LockedBox<[String]>]>([:])
        let writer = Unchecked(try redis.client())
        let writing = Thread {
            var commands: [[String]] = []
            for id in ids {
                for (state, result) in [("PROGRESS", "1"), ("PROGRESS", "2"), ("SUCCESS", "3")] {
                    let rec = Self.record(id, state, result)
                    commands += [["SETEX", ResultRecord.key(id), "600", rec], ["PUBLISH", ResultRecord.key(id), rec]]
                }
                if commands.count >= 600 {
                    _ = try? writer.value.pipeline(commands)
                    commands = []
                }
            }
            _ = try? writer.value.pipeline(commands)
        }
        writing.start()
        for chunk in stride(from: 0, to: ids.count, by: 100) {
            let made = try wl.onLoop { ids[chunk..<chunk + 100].map { ($0, wl.collect($0)) } }
            boxes.modify { for (id, box) in made { $0[id] = box } }
        }
        let all = boxes.get()
        XCTAssertTrue(
            eventually(timeout: 30) { all.values.allSatisfy { $0.get().last?.contains("SUCCESS") == true } },
            "every watcher reached the final state")
        let keys = try client.command("KEYS", ResultRecord.keyPrefix + "burst-*").elements ?? []
        XCTAssertEqual(keys.count, ids.count)
        for id in ids {
            let got = all[id]?.get() ?? []
            let expected =
                ["PENDING"]
                + [("PROGRESS", "1"), ("PROGRESS", "2"), ("SUCCESS", "3")].map {
                    Self.record(id, $0.0, $0.1)
                }
            var at = 0
            for state in got {
                guard let i = expected[at...].firstIndex(of: state) else {
                    XCTFail("\(id): \(got) is not an in-order subsequence of \(expected)")
                    break
                }
                at = i + 1
            }
            XCTAssertEqual(got.last, try client.command("GET", ResultRecord.key(id)).text, id)
        }
        let reads = try wl.onLoop { wl.watch.reads }
        XCTAssertGreaterThanOrEqual(reads, ids.count / ResultWatch.maxKeysPerRead)
        XCTAssertLessThan(reads, ids.count / 10, "reads batched: \(reads) MGETs for \(ids.count) tasks")
    }

    func testTheLimitOfWatchedTasks() throws {
        XCTAssertTrue(loop.stop())
        loop = try WatchLoop(endpoint: redis.endpoint, maxWatchedTasks: 2)
        let wl = loop!
        XCTAssertTrue(eventually { wl.isUp })
        let tokens = try wl.onLoop { () -> [ResultWatch.Token?] in
            let w = wl.watch
            return [w.watch("x") { _ in }, w.watch("x") { _ in }, w.watch("y") { _ in }, w.watch("z") { _ in }]
        }
        XCTAssertNotNil(tokens[0])
        XCTAssertNotNil(tokens[1], "a second watcher of a watched task is no new task")
        XCTAssertNotNil(tokens[2])
        XCTAssertNil(tokens[3], "a third task is over the limit")
        let third = try XCTUnwrap(tokens[2])
        let again = try wl.onLoop { () -> Bool in
            wl.watch.unwatch(third)
            return wl.watch.watch("z") { _ in } != nil
        }
        XCTAssertTrue(again)
        XCTAssertEqual(try wl.onLoop { wl.watch.watchedTasks }, 2)
    }

    /// A task unwatched (its channel released but still subscribed: idle) is watched again
    /// right as the subscriber's link is killed, and its final state is stored (and published,
    /// unseen) while the link is down. The channel is not reported confirmed while down, and once
    /// the next link confirms it the watcher is read: the final state arrives.
    func testAWatchStartedWhileTheLinkIsDownIsReadOnceItIsBack() throws {
        let wl = loop!
        let key = ResultRecord.key("k")
        try store("k", "PROGRESS", "1")
        let (first, token) = try wl.onLoop { wl.collectWithToken("k") }
        XCTAssertTrue(eventually { first.get().count == 1 })
        let unwatching = try XCTUnwrap(token)
        let again = LockedBox<[String]>([])
        let whenDown = LockedBox<(up: Bool, confirmed: Bool)?>(nil)
        try wl.onLoop {
            let sub = wl.watch.subscriber
            sub.idleSeconds = 60  // released, still subscribed when the link is killed
            wl.watch.unwatch(unwatching)
            let onDown = sub.onDown
            sub.onDown = {
                onDown()
                sub.onDown = onDown
                whenDown.set((sub.isUp, sub.isConfirmed(key)))
                _ = wl.watch.watch("k") { update in again.modify { $0.append(update.record ?? "PENDING") } }
            }
        }
        let rec = Self.record("k", "SUCCESS", "2")
        let killed = try client.pipeline([
            ["CLIENT", "KILL", "TYPE", "pubsub"], ["SETEX", key, "600", rec], ["PUBLISH", key, rec],
        ])
        XCTAssertEqual(killed.first?.integer, 1, "the watch's subscriber connection was killed")
        XCTAssertTrue(eventually { whenDown.get() != nil })
        XCTAssertEqual(whenDown.get()?.up, false)
        XCTAssertEqual(whenDown.get()?.confirmed, false, "no channel is confirmed while the link is down")
        XCTAssertTrue(eventually { again.get().count == 1 }, "read once the link is back: \(again.get())")
        XCTAssertEqual(again.get(), [rec])
        XCTAssertEqual(try wl.barrier(), true)
        XCTAssertEqual(again.get(), [rec], "once")
        XCTAssertEqual(first.get(), [Self.record("k", "PROGRESS", "1")], "the first watcher got nothing after unwatch")
    }

    /// An answered barrier's callback is let go at once, even while later barriers keep the
    /// queue from ever emptying (two chains, each asking the next barrier from its answer).
    func testAnsweredBarriersAreNotKept() throws {
        final class Held {}
        let wl = loop!
        let outcome = LockedBox<(released: Bool, waiting: Int, slots: Int)?>(nil)
        try wl.onLoop {
            let sub = wl.watch.subscriber
            let held = Held()
            weak var weakHeld = held
            sub.barrier { [held] _ in _ = held }
            var answered = 0
            func chain() {
                sub.barrier { _ in
                    answered += 1
                    if answered < 300 { return chain() }
                    guard answered == 300 else { return }  // the other chain's last one
                    outcome.set((weakHeld == nil, sub.barriersWaiting, sub.barrierSlots))
                }
            }
            chain()
            chain()
        }
        XCTAssertTrue(eventually { outcome.get() != nil })
        XCTAssertEqual(outcome.get()?.released, true, "the first barrier's callback was released")
        XCTAssertEqual(outcome.get()?.waiting, 1, "the other chain's barrier was still owed")
        XCTAssertLessThan(outcome.get()?.slots ?? .max, 140, "used slots compacted away")
    }
}

/// A `ResultWatch` (and its Redis connection) on an event loop of its own thread.
final class WatchLoop: @unchecked Sendable {
    let loop: EventLoop
    let redis: AsyncRedis
    let watch: ResultWatch
    private let jobs = LockedBox<[@Sendable () -> Void]>([])
    private let stopRequested = LockedBox(false)
    private let finished = DispatchSemaphore(value: 0)
    private var stopped = false

    init(endpoint: RedisEndpoint, maxWatchedTasks: Int = 100_000) throws {
        var logger = Logger(label: "result-watch-test")
        logger.logLevel = .critical
        loop = try EventLoop()
        redis = AsyncRedis(loop: loop, endpoint: endpoint, logger: logger)
        watch = ResultWatch(
            loop: loop, redis: redis, endpoint: endpoint, logger: logger, maxWatchedTasks: maxWatchedTasks)
        let thread = Thread { [self] in
            let poll = loop.timer(after: 1, repeating: true) { [self] in
                for job in jobs.exchange([]) { job() }
                if stopRequested.get() { loop.stop() }
            }
            redis.start()
            watch.start()
            loop.run()
            poll.cancel()
            watch.close()
            redis.close()
            finished.signal()
        }
        thread.start()
    }

    /// Run `body` on the loop thread and return its value (throws when the loop does not run it in `timeout` s).
    func onLoop<T: Sendable>(timeout: Double = 30, _ body: @escaping @Sendable () -> T) throws -> T {
        let result = LockedBox<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        jobs.modify {
            $0.append {
                result.set(body())
                done.signal()
            }
        }
        guard done.wait(timeout: .now() + timeout) == .success, let value = result.get() else {
            throw TestFailure("the watch loop did not run a job within \(timeout) s")
        }
        return value
    }

    var isUp: Bool { (try? onLoop { self.redis.isConnected && self.watch.subscriber.isUp }) ?? false }

    /// (Loop thread) watch `id`, recording each update's record ("PENDING" for none).
    func collect(_ id: String) -> LockedBox<[String]> { collectWithToken(id).0 }

    /// (Loop thread) `collect`, with the watcher's token.
    func collectWithToken(_ id: String) -> (LockedBox<[String]>, ResultWatch.Token?) {
        let box = LockedBox<[String]>([])
        let token = watch.watch(id) { update in box.modify { $0.append(update.record ?? "PENDING") } }
        return (box, token)
    }

    func watchCollecting(_ id: String) throws -> LockedBox<[String]> { try onLoop { self.collect(id) } }

    /// A barrier on the watch's subscriber, asked now: true once every message published
    /// before it has been handled (false: the link dropped; throws after `timeout` s).
    func barrier(timeout: Double = 10) throws -> Bool {
        let answer = LockedBox<Bool?>(nil)
        try onLoop { self.watch.subscriber.barrier { ok in answer.set(ok) } }
        guard eventually(timeout: timeout, { answer.get() != nil }), let ok = answer.get() else {
            throw TestFailure("no barrier answer within \(timeout) s")
        }
        return ok
    }

    /// Stop the loop; false when its thread did not end within `timeout` s.
    @discardableResult
    func stop(timeout: Double = 30) -> Bool {
        guard !stopped else { return true }
        stopped = true
        stopRequested.set(true)
        return finished.wait(timeout: .now() + timeout) == .success
    }
}

/// A value handed to another thread by a test that knows only that thread uses it.
struct Unchecked<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
