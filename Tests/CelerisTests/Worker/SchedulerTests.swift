@testable import FastCore
import Foundation
import Logging
import XCTest

/// The scheduler in process on a real redis-server, its due times on a `ManualClock` (the lease's
/// PX runs on Redis's real clock; these tests do not time leases). Entries are run-time entries
/// (`celeris:beat:dynamic`), as the frontend stores them.
final class SchedulerTests: RedisTestCase {
    let tickJSON = #"{"task": "add", "schedule": 10, "args": [2, 3]}"#
    let tick = ScheduleEntry(name: "tick", task: "add", schedule: .interval(seconds: 10), args: [2, 3])

    func scheduler(_ id: String, clock: ManualClock) -> Scheduler {
        Scheduler(
            configuration: BeatConfiguration(
                endpoint: redis.endpoint, id: id, readsRedisEntries: true, leaseMs: 3000, reloadInterval: 1,
                clock: clock),
            logger: Logger(label: "test.beat"))
    }

    /// Store a run-time entry as the frontend does.
    func put(_ name: String, _ json: String) throws {
        try client.command("HSET", BeatKeys.dynamic, name, json)
        try client.command("INCR", BeatKeys.dynamicVersion)
    }

    func field(_ name: String, _ field: String) throws -> String? {
        try client.command("HGET", BeatKeys.entry(name), field).text
    }

    func int(_ name: String, _ field: String) throws -> Int64? { try self.field(name, field).flatMap { Int64($0) } }

    func queued(_ queue: String = "celery") throws -> [[UInt8]] {
        // LPUSHed: the oldest is last.
        Array((try client.command("LRANGE", queue, "0", "-1").elements?.compactMap(\.bytes) ?? []).reversed())
    }

    /// The keyspace without the heartbeat's scores (they move with real time).
    func stateWithoutHeartbeat() throws -> [String: String] {
        var state = try client.keyspace()
        state[BeatKeys.schedulers] = nil
        return state
    }

    /// An interval entry sends exactly its due times as the clock advances: anchored at the first
    /// leader's now, then one message per 10 s; due times missed while the scheduler ran are each
    /// sent late. The envelope is BeatMessage's; the state hash records each send.
    func testIntervalEntrySendsExactlyItsDueTimes() throws {
        try put("tick", tickJSON)
        let clock = ManualClock(CeleryTime.now())
        let s = scheduler("beat@a:1:0001", clock: clock)
        let wait = try s.turn()
        XCTAssertTrue(s.isLeader)
        let anchor = try XCTUnwrap(try int("tick", "due"))
        XCTAssertEqual(anchor, try XCTUnwrap(s.startedAt))
        XCTAssertEqual(wait, 1, accuracy: 0.01, "the next lease check comes first")
        XCTAssertEqual(
            try client.keys(),
            [
                BeatKeys.dynamic, BeatKeys.dynamicVersion, BeatKeys.leader, BeatKeys.leadership, BeatKeys.schedulers,
                BeatKeys.names, BeatKeys.entry("tick"), "_kombu.binding.celery",
            ])
        XCTAssertEqual(try client.keyspace()[BeatKeys.names], "set:" + ["tick"].description)
        XCTAssertEqual(
            try client.keyspace()[BeatKeys.entry("tick")],
            "hash:"
                + [
                    "due=\(anchor)", "next=\(anchor + 10_000)", "source=redis",
                    "spec=" + tick.jsonObject().serialized(),
                ].sorted().description)

        clock.advance(9.5)
        _ = try s.turn()
        XCTAssertEqual(try queued().count, 0, "not due yet")
        clock.advance(0.501)
        _ = try s.turn()
        let first = try queued()
        XCTAssertEqual(first.count, 1)
        let sentAt = try XCTUnwrap(try int("tick", "sent_at"))
        let taskId = try XCTUnwrap(try field("tick", "task_id"))
        XCTAssertEqual(Double(sentAt - (anchor + 10_000)), 1, accuracy: 1, "sent when due, on Redis's clock")
        let expected = BeatMessage.envelope(
            of: BeatMessage.message(for: tick, sentAt: Double(sentAt) / 1000, id: taskId), for: tick)
        XCTAssertEqual(
            try envelopeBlankingRandomProperties(first[0]), try envelopeBlankingRandomProperties(Array(expected.utf8)))
        XCTAssertEqual(
            try client.keyspace()[BeatKeys.entry("tick")],
            "hash:"
                + [
                    "count=1", "due=\(anchor + 10_000)", "next=\(anchor + 20_000)", "sent_at=\(sentAt)",
                    "task_id=\(taskId)", "source=redis", "spec=" + tick.jsonObject().serialized(),
                ].sorted().description)

        // 25 s pass in one step: the due times at +20 s and +30 s were missed while this scheduler
        // ran, so both are sent, late, once each.
        clock.advance(25)
        _ = try s.turn()
        let all = try queued()
        XCTAssertEqual(all.count, 3)
        XCTAssertEqual(Set(try all.map { try TaskMessage.decode($0).id }).count, 3)
        XCTAssertEqual(try int("tick", "count"), 3)
        XCTAssertEqual(try int("tick", "due"), anchor + 30_000)
        XCTAssertEqual(try int("tick", "next"), anchor + 40_000)
        _ = try s.turn()
        XCTAssertEqual(try queued().count, 3, "nothing more until +40 s")
    }

    /// Two schedulers on one Redis: one leads and sends, the other stands by; after a warm
    /// release the other takes over from the recorded due time. Every due time is sent once.
    func testTwoSchedulersSendEachDueTimeOnce() throws {
        try put("tick", #"{"task": "add", "schedule": 1}"#)
        let clock = ManualClock(CeleryTime.now())
        let a = scheduler("beat@a:1:0001", clock: clock)
        let b = scheduler("beat@b:2:0002", clock: clock)
        _ = try a.turn()
        _ = try b.turn()
        XCTAssertTrue(a.isLeader)
        XCTAssertFalse(b.isLeader)
        let anchor = try XCTUnwrap(try int("tick", "due"))
        clock.advance(0.5)
        for k in 1...10 {
            clock.advance(1)
            if k == 6 {
                a.finish()  // warm release: the standby is woken and takes over
                b.nextLeaseCheck = 0
            }
            if k < 6 { _ = try a.turn() }
            _ = try b.turn()
            XCTAssertEqual(try queued().count, k, "due time \(k)")
            XCTAssertEqual(try int("tick", "due"), anchor + Int64(k) * 1000)
        }
        XCTAssertTrue(b.isLeader)
        XCTAssertFalse(a.isLeader)
        XCTAssertEqual(try int("tick", "count"), 10)
        XCTAssertEqual(Set(try queued().map { try TaskMessage.decode($0).id }).count, 10)
        XCTAssertEqual(try client.command("HGET", BeatKeys.leadership, "changes").text, "2")
        XCTAssertEqual(try client.keyspace()[BeatKeys.schedulers]?.contains("beat@a:1:0001"), false, "a left")
    }

    /// Both believe they lead (a's lease was lost to b while a was not looking): a's sends are
    /// refused by the script and write nothing; b sends each due time once.
    func testAFormerLeaderCannotSend() throws {
        try put("tick", tickJSON)
        let clock = ManualClock(CeleryTime.now())
        let a = scheduler("beat@a:1:0001", clock: clock)
        let b = scheduler("beat@b:2:0002", clock: clock)
        _ = try a.turn()
        _ = try b.turn()
        let anchor = try XCTUnwrap(try int("tick", "due"))
        try client.command("DEL", BeatKeys.leader)  // a's lease ran out...
        b.nextLeaseCheck = 0
        _ = try b.turn()  // ...and b took it
        XCTAssertTrue(a.isLeader, "a has not renewed yet")
        XCTAssertTrue(b.isLeader)
        clock.advance(10.5)
        let before = try stateWithoutHeartbeat()
        _ = try a.turn()
        XCTAssertEqual(try stateWithoutHeartbeat(), before, "a's send was refused: nothing written")
        XCTAssertFalse(a.isLeader)
        _ = try b.turn()
        XCTAssertEqual(try queued().count, 1)
        XCTAssertEqual(try int("tick", "due"), anchor + 10_000)
        _ = try a.turn()
        XCTAssertEqual(try queued().count, 1)
    }

    /// A due time already recorded (by another scheduler) is not sent again: the send is fenced
    /// (nothing written) and the scheduler goes on from the recorded due time.
    func testRecordedDueTimeIsNotSentAgain() throws {
        try put("tick", tickJSON)
        let clock = ManualClock(CeleryTime.now())
        let s = scheduler("beat@a:1:0001", clock: clock)
        _ = try s.turn()
        let anchor = try XCTUnwrap(try int("tick", "due"))
        try client.command("HSET", BeatKeys.entry("tick"), "due", String(anchor + 20_000))
        clock.advance(10.5)
        let before = try stateWithoutHeartbeat()
        _ = try s.turn()
        XCTAssertEqual(try stateWithoutHeartbeat(), before, "fenced: nothing written")
        clock.advance(10)
        _ = try s.turn()
        XCTAssertEqual(try stateWithoutHeartbeat(), before, "+20 s is recorded: not planned")
        clock.advance(10)
        _ = try s.turn()
        XCTAssertEqual(try queued().count, 1)
        XCTAssertEqual(try int("tick", "due"), anchor + 30_000)
        XCTAssertEqual(try int("tick", "count"), 1)
    }

    /// Due times missed before this scheduler started follow catch_up: `once` sends one message
    /// (recorded at the latest missed due time), `skip` records it and sends nothing.
    func testCatchUpOnceAndSkipAfterAnOutage() throws {
        try put("once", #"{"task": "add", "schedule": 10, "catch_up": "once"}"#)
        try put("skip", #"{"task": "add", "schedule": 10, "catch_up": "skip"}"#)
        let clock = ManualClock(CeleryTime.now())
        let s = scheduler("beat@a:1:0001", clock: clock)
        try s.start()
        let started = try XCTUnwrap(s.startedAt)
        // A scheduler before the outage handled the due time 35 s before this one started.
        for name in ["once", "skip"] {
            try client.command("HSET", BeatKeys.entry(name), "due", String(started - 35_000), "count", "4")
        }
        _ = try s.turn()
        XCTAssertEqual(try queued().count, 1, "once: one message for the three missed due times")
        XCTAssertEqual(try int("once", "due"), started - 5_000)
        XCTAssertEqual(try int("once", "count"), 5)
        XCTAssertEqual(try int("once", "next"), started + 5_000)
        XCTAssertEqual(try int("skip", "due"), started - 5_000)
        XCTAssertEqual(try int("skip", "count"), 4)
        XCTAssertNil(try field("skip", "sent_at"))
        XCTAssertEqual(try int("skip", "next"), started + 5_000)
        clock.advance(5.5)
        _ = try s.turn()
        XCTAssertEqual(try queued().count, 3, "both send their next due time")
        XCTAssertEqual(try int("once", "count"), 6)
        XCTAssertEqual(try int("skip", "count"), 5)
    }

    /// A reload keeps each entry's recorded state: a changed entry goes on from its due time with
    /// its new spec, a new one is anchored, a removed one leaves `names` and its hash is deleted.
    func testReloadKeepsState() throws {
        try put("tick", tickJSON)
        let clock = ManualClock(CeleryTime.now())
        let s = scheduler("beat@a:1:0001", clock: clock)
        _ = try s.turn()
        let anchor = try XCTUnwrap(try int("tick", "due"))
        clock.advance(10.5)
        _ = try s.turn()
        XCTAssertEqual(try int("tick", "count"), 1)

        try put("tick", #"{"task": "add", "schedule": 10, "args": [9]}"#)
        try put("tock", #"{"task": "noop", "schedule": 60}"#)
        clock.advance(1)
        _ = try s.turn()
        XCTAssertEqual(s.entryNames, ["tick", "tock"])
        XCTAssertEqual(try client.keyspace()[BeatKeys.names], "set:" + ["tick", "tock"].description)
        XCTAssertEqual(try int("tick", "due"), anchor + 10_000, "kept")
        XCTAssertEqual(try int("tick", "count"), 1)
        let changed = ScheduleEntry(name: "tick", task: "add", schedule: .interval(seconds: 10), args: [9])
        XCTAssertEqual(try field("tick", "spec"), changed.jsonObject().serialized())
        let tockAnchor = try XCTUnwrap(try int("tock", "due"))
        XCTAssertEqual(tockAnchor, anchor + 11_500, accuracy: 2)

        try client.command("HDEL", BeatKeys.dynamic, "tock")
        try client.command("INCR", BeatKeys.dynamicVersion)
        clock.advance(1)
        _ = try s.turn()
        XCTAssertEqual(s.entryNames, ["tick"])
        XCTAssertEqual(try client.keyspace()[BeatKeys.names], "set:" + ["tick"].description)
        XCTAssertEqual(try client.command("EXISTS", BeatKeys.entry("tock")).integer, 0)

        clock.advance(8)  // anchor + 20.5 s
        _ = try s.turn()
        let all = try queued()
        XCTAssertEqual(all.count, 2)
        XCTAssertEqual(try int("tick", "due"), anchor + 20_000)
        let last = try TaskMessage.decode(try XCTUnwrap(all.last))
        XCTAssertEqual(last.args, [9])
    }

    /// An entry whose schedule has no due time (30 February) is logged and left out; the others
    /// are scheduled.
    func testEntryWithoutDueTimesIsLeftOut() throws {
        try put("tick", tickJSON)
        try put("never", #"{"task": "add", "schedule": {"crontab": "0 0 30 2 *"}}"#)
        let s = scheduler("beat@a:1:0001", clock: ManualClock(CeleryTime.now()))
        _ = try s.turn()
        XCTAssertEqual(s.entryNames, ["tick"])
        XCTAssertEqual(try client.keyspace()[BeatKeys.names], "set:" + ["tick"].description)
        XCTAssertEqual(try client.command("EXISTS", BeatKeys.entry("never")).integer, 0)
    }

    /// A Redis restart (state lost) fails a turn; the next turns reconnect, take the lease again,
    /// anchor the entry anew and send from there.
    func testRedisRestartIsSurvived() throws {
        try put("tick", tickJSON)
        let clock = ManualClock(CeleryTime.now())
        let s = scheduler("beat@a:1:0001", clock: clock)
        _ = try s.turn()
        XCTAssertTrue(s.isLeader)
        redis.stop()
        clock.advance(10.5)  // a send is due: the turn needs Redis
        XCTAssertThrowsError(try s.turn())
        try redis.start()
        client = try redis.client()
        try put("tick", tickJSON)
        _ = try s.turn()  // the send script finds no lease: leadership lost
        s.nextLeaseCheck = 0  // a third of the lease later
        _ = try s.turn()
        XCTAssertTrue(s.isLeader)
        XCTAssertEqual(try client.command("GET", BeatKeys.leader).text, "beat@a:1:0001")
        let anchor = try XCTUnwrap(try int("tick", "due"))
        XCTAssertEqual(try queued().count, 0)
        clock.advance(10.5)
        _ = try s.turn()
        XCTAssertEqual(try queued().count, 1)
        XCTAssertEqual(try int("tick", "due"), anchor + 10_000)
    }

    /// `run()` leads; `shutdown()` ends a standby waiting in BLPOP (a 10 s wait) at once, and the
    /// leader hands over: the lease is gone, its id waits on the hand-over list, and both left
    /// the schedulers set.
    func testRunAndWarmShutdown() throws {
        try put("tick", tickJSON)
        let clock = ManualClock(CeleryTime.now())
        let a = scheduler("beat@a:1:0001", clock: clock)
        let b = Scheduler(
            configuration: BeatConfiguration(
                endpoint: redis.endpoint, id: "beat@b:2:0002", leaseMs: 30_000, clock: clock),
            logger: Logger(label: "test.beat"))
        let done = LockedBox<Set<String>>([])
        for s in [a, b] {
            Thread {
                s.run()
                done.modify { _ = $0.insert(s.id) }
            }.start()
            XCTAssertTrue(try eventually { try self.client.command("ZSCORE", BeatKeys.schedulers, s.id).text != nil })
        }
        XCTAssertEqual(try client.command("GET", BeatKeys.leader).text, "beat@a:1:0001")
        XCTAssertTrue(try eventually { try self.client.info("clients", "blocked_clients") == 1 }, "b waits in BLPOP")
        let asked = Date()
        b.shutdown()
        XCTAssertTrue(eventually { done.get().contains(b.id) })
        XCTAssertLessThan(Date().timeIntervalSince(asked), 5, "not the 10 s BLPOP")
        a.shutdown()
        XCTAssertTrue(eventually { done.get().contains(a.id) })
        XCTAssertEqual(try client.command("EXISTS", BeatKeys.leader, BeatKeys.schedulers).integer, 0)
        XCTAssertEqual(try client.keyspace()[BeatKeys.handover], "list:" + ["beat@a:1:0001"].description)
    }

    /// Editing an entry's schedule (1 h to 1 s, 30 s after its anchor) does not send the new
    /// schedule's backlog: the due times before the edit was loaded are missed ones and collapse
    /// into the catch-up step (once: one message; skip: none), as Celery beat sends at most one.
    func testScheduleEditSendsNoBacklog() throws {
        try put("once", #"{"task": "add", "schedule": 3600}"#)
        try put("skip", #"{"task": "add", "schedule": 3600, "catch_up": "skip"}"#)
        let clock = ManualClock(CeleryTime.now())
        let s = scheduler("beat@a:1:0001", clock: clock)
        _ = try s.turn()
        let anchor = try XCTUnwrap(try int("once", "due"))
        clock.advance(30.25)
        try put("once", #"{"task": "add", "schedule": 1}"#)
        try put("skip", #"{"task": "add", "schedule": 1, "catch_up": "skip"}"#)
        _ = try s.turn()
        XCTAssertEqual(try queued().count, 1, "once: one message for the 30 missed due times")
        XCTAssertEqual(try int("once", "due"), anchor + 30_000)
        XCTAssertEqual(try int("once", "count"), 1)
        XCTAssertEqual(try int("skip", "due"), anchor + 30_000)
        XCTAssertNil(try field("skip", "count"))
        clock.advance(1)
        _ = try s.turn()
        XCTAssertEqual(try queued().count, 3, "then each due time once")
        XCTAssertEqual(try int("once", "due"), anchor + 31_000)
        XCTAssertEqual(try int("skip", "due"), anchor + 31_000)
    }

    /// A recorded `due` that Lua could compare but Swift cannot parse ("1.8e12", a year ahead)
    /// does not stall the scheduler: the send script treats it as absent and overwrites it, and
    /// the turn asks for a wait, not an immediate turn again.
    func testUnreadableRecordedDueIsOverwritten() throws {
        try put("tick", tickJSON)
        let clock = ManualClock(CeleryTime.now())
        let s = scheduler("beat@a:1:0001", clock: clock)
        _ = try s.turn()
        let anchor = try XCTUnwrap(try int("tick", "due"))
        try client.command("HSET", BeatKeys.entry("tick"), "due", "1.8e12")
        clock.advance(10.5)
        _ = try s.turn()
        XCTAssertEqual(try queued().count, 1)
        XCTAssertEqual(try int("tick", "due"), anchor + 10_000)
        XCTAssertEqual(try int("tick", "count"), 1)
        XCTAssertGreaterThan(try s.turn(), 0.1, "no busy loop")
        XCTAssertEqual(try queued().count, 1)
    }

    /// One entry's failing send script (its queue key is a string: WRONGTYPE) fails that entry
    /// alone: the turn does not throw, the connection is kept, the other entry sends (its junk
    /// `count` restarts at 1 instead of failing HINCRBY after the LPUSH), and the failed entry
    /// backs off (1 s) and sends once its queue is usable.
    func testOneEntrysScriptErrorFailsThatEntryAlone() throws {
        try put("tick", tickJSON)
        try put("bad", #"{"task": "add", "schedule": 10, "options": {"queue": "badq"}}"#)
        let clock = ManualClock(CeleryTime.now())
        let s = scheduler("beat@a:1:0001", clock: clock)
        _ = try s.turn()
        let anchor = try XCTUnwrap(try int("tick", "due"))
        try client.command("SET", "badq", "not a list")
        try client.command("HSET", BeatKeys.entry("tick"), "count", "junk")
        let connection = try XCTUnwrap(s.redis)
        clock.advance(10.5)
        let before = try stateWithoutHeartbeat()
        _ = try s.turn()
        XCTAssertTrue(s.redis === connection, "connection kept")
        XCTAssertTrue(s.isLeader)
        XCTAssertEqual(try queued().count, 1)
        XCTAssertEqual(try int("tick", "count"), 1)
        XCTAssertEqual(try int("tick", "due"), anchor + 10_000)
        var state = try stateWithoutHeartbeat()
        for key in ["celery", BeatKeys.entry("tick"), "_kombu.binding.celery"] { state[key] = before[key] }
        XCTAssertEqual(state, before, "bad's failed call wrote nothing")
        try client.command("DEL", "badq")
        clock.advance(1)
        _ = try s.turn()
        XCTAssertEqual(try client.command("LLEN", "badq").integer, 1, "sent after its back-off")
        XCTAssertEqual(try int("bad", "due"), anchor + 10_000)
        XCTAssertEqual(try int("bad", "count"), 1)
    }

    /// A former leader's sync (it still believes it leads, with a stale view: here no entries)
    /// writes nothing: the names set and the live entry's hash stay, and it learns it lost.
    func testAFormerLeadersSyncCannotRemoveLiveEntries() throws {
        let clock = ManualClock(CeleryTime.now())
        let a = Scheduler(
            configuration: BeatConfiguration(
                endpoint: redis.endpoint, id: "beat@a:1:0001", readsRedisEntries: false, clock: clock),
            logger: Logger(label: "test.beat"))
        _ = try a.turn()
        XCTAssertTrue(a.isLeader)
        try client.command("DEL", BeatKeys.leader)  // a's lease ran out while it was paused...
        try put("tick", tickJSON)
        let b = scheduler("beat@b:2:0002", clock: clock)
        _ = try b.turn()  // ...b took it and scheduled tick
        XCTAssertTrue(b.isLeader)
        XCTAssertEqual(try client.keyspace()[BeatKeys.names], "set:" + ["tick"].description)
        let before = try stateWithoutHeartbeat()
        a.synced = false  // a resumes and syncs its (empty) view
        _ = try a.turn()
        XCTAssertEqual(try stateWithoutHeartbeat(), before, "nothing removed")
        XCTAssertFalse(a.isLeader)
    }

    /// Out-of-range numbers from the public API are clamped, not trapped on or looped over: a
    /// lease of 0 (SET PX 0 is an error) or below leads with the shortest lease; a huge one
    /// (3 * lease would overflow) and a NaN reload interval are brought into range.
    func testOutOfRangeConfigurationIsClamped() throws {
        try put("tick", tickJSON)
        for leaseMs: Int64 in [0, -5] {
            let s = Scheduler(
                configuration: BeatConfiguration(
                    endpoint: redis.endpoint, id: "beat@a:1:000\(-leaseMs)", leaseMs: leaseMs,
                    clock: ManualClock(CeleryTime.now())),
                logger: Logger(label: "test.beat"))
            XCTAssertEqual(s.configuration.leaseMs, BeatConfiguration.shortestLeaseMs)
            _ = try s.turn()
            XCTAssertTrue(s.isLeader)
            let pttl = try XCTUnwrap(try client.command("PTTL", BeatKeys.leader).integer)
            XCTAssertGreaterThan(pttl, 0)
            XCTAssertLessThanOrEqual(pttl, BeatConfiguration.shortestLeaseMs)
            s.finish()
        }
        let huge = Scheduler(
            configuration: BeatConfiguration(endpoint: redis.endpoint, leaseMs: .max, reloadInterval: .nan),
            logger: Logger(label: "test.beat"))
        XCTAssertEqual(huge.configuration.leaseMs, BeatConfiguration.longestLeaseMs)
        XCTAssertEqual(huge.configuration.reloadInterval, 1)
    }

    /// `finish()` on a connection `shutdown()` has just shut (BLPOP returned first) retries on a
    /// new connection: the lease is handed over and the scheduler leaves the schedulers set.
    func testFinishOnADeadConnectionRetriesOnANewOne() throws {
        try put("tick", tickJSON)
        let s = scheduler("beat@a:1:0001", clock: ManualClock(CeleryTime.now()))
        _ = try s.turn()
        XCTAssertTrue(s.isLeader)
        let socket = try XCTUnwrap(s.redis).socket
        _ = Foundation.shutdown(socket, Int32(SHUT_RDWR))
        s.finish()
        XCTAssertEqual(try client.command("EXISTS", BeatKeys.leader, BeatKeys.schedulers).integer, 0)
        XCTAssertEqual(try client.keyspace()[BeatKeys.handover], "list:" + ["beat@a:1:0001"].description)
    }

    /// A clock reading far out of range (1e300 s) cannot trap the scheduler: the turn fails
    /// with an error and writes nothing.
    func testClockOutOfRangeFailsTheTurnWithoutTrapping() throws {
        try put("tick", tickJSON)
        let clock = ManualClock(CeleryTime.now())
        let s = scheduler("beat@a:1:0001", clock: clock)
        _ = try s.turn()
        clock.advance(1e300)
        let before = try stateWithoutHeartbeat()
        XCTAssertThrowsError(try s.turn())
        XCTAssertEqual(try stateWithoutHeartbeat(), before)
        XCTAssertThrowsError(try s.turn(), "and again next turn")
    }

    /// A catch-up longer than the lease (100 entries x 100 late sends, the shortest lease: 300 ms;
    /// the sends take ~1 s in debug) renews the lease between batches: it keeps the leadership
    /// and sends every due time in one turn.
    func testLongCatchUpRenewsTheLeaseBetweenBatches() throws {
        for k in 0..<100 { try client.command("HSET", BeatKeys.dynamic, "e\(k)", #"{"task": "add", "schedule": 1}"#) }
        try client.command("INCR", BeatKeys.dynamicVersion)
        let clock = ManualClock(CeleryTime.now())
        let s = Scheduler(
            configuration: BeatConfiguration(
                endpoint: redis.endpoint, id: "beat@a:1:0001", leaseMs: 300, clock: clock),
            logger: Logger(label: "test.beat"))
        _ = try s.turn()
        XCTAssertTrue(s.isLeader)
        clock.advance(100.5)
        let started = Date()
        _ = try s.turn()
        let took = Date().timeIntervalSince(started)
        XCTAssertTrue(s.isLeader)
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 10_000)
        XCTAssertEqual(try client.command("HGET", BeatKeys.leadership, "changes").text, "1")
        print("catch-up of 10000 sends took \(took) s")
    }

    /// A system clock stepped 10 s forward (less than the 60 s between measurements of Redis's
    /// clock) does not send a due time early: between measurements now runs on the monotonic
    /// clock from the last Redis TIME.
    func testSystemClockStepDoesNotSendEarly() throws {
        final class SteppedClock: WallClock, @unchecked Sendable {
            let step = LockedBox(0.0)
            func now() -> Double { Date().timeIntervalSince1970 + step.get() }
        }
        try put("tick", tickJSON)
        let clock = SteppedClock()
        let s = Scheduler(
            configuration: BeatConfiguration(endpoint: redis.endpoint, id: "beat@a:1:0001", clock: clock),
            logger: Logger(label: "test.beat"))
        _ = try s.turn()
        let anchor = try XCTUnwrap(try int("tick", "due"))
        clock.step.modify { $0 += 10 }
        _ = try s.turn()
        XCTAssertEqual(try queued().count, 0, "not due: only the system clock moved")
        XCTAssertLessThan(try client.redisMillis(), anchor + 10_000)
    }
}
