@testable import FastCore
import Foundation
import XCTest

/// The leader lease on a real redis-server: acquire, renew, loss, release with a hand-over that
/// wakes a waiting standby at once, and the send script's fence against a scheduler that does
/// not hold the lease.
final class BeatLeaseTests: RedisTestCase {
    let leaseMs: Int64 = 3000

    func testAcquireRecordsLeadershipAndOnlyOneHolds() throws {
        XCTAssertEqual(try client.keyspace(), [:])
        let a = BeatLease(id: "beat@a:1:0001", leaseMs: leaseMs)
        let b = BeatLease(id: "beat@b:2:0002", leaseMs: leaseMs)
        let now = try client.redisMillis()
        XCTAssertTrue(try a.acquire(on: client, now: now))
        XCTAssertTrue(a.isLeader)
        XCTAssertFalse(try b.acquire(on: client, now: now))
        XCTAssertFalse(b.isLeader)
        XCTAssertFalse(try b.renew(on: client, now: now), "a standby has nothing to renew")
        try a.heartbeat(on: client, now: now)
        try b.heartbeat(on: client, now: now + 1)
        XCTAssertEqual(
            try client.keyspace(),
            [
                BeatKeys.leader: "string:beat@a:1:0001",
                BeatKeys.leadership: "hash:" + ["changes=1", "id=beat@a:1:0001", "since=\(now)"].description,
                BeatKeys.schedulers: "zset:" + ["beat@a:1:0001=\(now)", "beat@b:2:0002=\(now + 1)"].description,
            ])
        let pttl = try XCTUnwrap(try client.command("PTTL", BeatKeys.leader).integer)
        XCTAssertGreaterThan(pttl, 0)
        XCTAssertLessThanOrEqual(pttl, leaseMs)
    }

    /// Acquiring is one step: a leadership key of another type (a string) is replaced and the
    /// lease taken with the record, never the lease without it (isLeader false while holding it).
    func testAcquireIsWholeWhenTheLeadershipKeyIsJunk() throws {
        try client.command("SET", BeatKeys.leadership, "junk")
        let a = BeatLease(id: "beat@a:1:0001", leaseMs: leaseMs)
        XCTAssertTrue(try a.acquire(on: client, now: 7))
        XCTAssertTrue(a.isLeader)
        XCTAssertEqual(
            try client.keyspace(),
            [
                BeatKeys.leader: "string:beat@a:1:0001",
                BeatKeys.leadership: "hash:" + ["changes=1", "id=beat@a:1:0001", "since=7"].description,
            ])
        try client.command("DEL", BeatKeys.leader)
        try client.command("HSET", BeatKeys.leadership, "changes", "x")
        let b = BeatLease(id: "beat@b:2:0002", leaseMs: leaseMs)
        XCTAssertTrue(try b.acquire(on: client, now: 8))
        XCTAssertEqual(
            try client.keyspace()[BeatKeys.leadership],
            "hash:" + ["changes=1", "id=beat@b:2:0002", "since=8"].description)
    }

    func testRenewExtendsOwnLeaseAndRefusesAnothers() throws {
        let a = BeatLease(id: "beat@a:1:0001", leaseMs: leaseMs)
        XCTAssertTrue(try a.acquire(on: client, now: 1))
        try client.command("PEXPIRE", BeatKeys.leader, "500")
        XCTAssertTrue(try a.renew(on: client, now: 2))
        XCTAssertGreaterThan(try XCTUnwrap(try client.command("PTTL", BeatKeys.leader).integer), 500)
        // The script itself: another id renews nothing.
        let before = try client.keyspace()
        XCTAssertEqual(
            try BeatScripts.renew.run(on: client, keys: [BeatKeys.leader], args: ["beat@b:2:0002", "3000"]).integer, 0)
        XCTAssertEqual(try client.keyspace(), before)
    }

    /// The lease expired and another scheduler took it: the renew finds it is not ours.
    func testRenewFindsTheLeaseLostToAnother() throws {
        let a = BeatLease(id: "beat@a:1:0001", leaseMs: leaseMs)
        let b = BeatLease(id: "beat@b:2:0002", leaseMs: leaseMs)
        XCTAssertTrue(try a.acquire(on: client, now: 1))
        try client.command("DEL", BeatKeys.leader)  // as if the lease ran out
        XCTAssertTrue(try b.acquire(on: client, now: 2))
        XCTAssertFalse(try a.renew(on: client, now: 3))
        XCTAssertFalse(a.isLeader)
        XCTAssertEqual(try client.command("GET", BeatKeys.leader).text, "beat@b:2:0002")
        XCTAssertEqual(
            try client.keyspace()[BeatKeys.leadership],
            "hash:" + ["changes=2", "id=beat@b:2:0002", "since=2"].description)
        // Nor can a release by the old leader touch it.
        a.lost()
        let before = try client.keyspace()
        XCTAssertEqual(
            try BeatScripts.release.run(
                on: client, keys: [BeatKeys.leader, BeatKeys.handover], args: ["beat@a:1:0001", "3000"]
            ).integer, 0)
        XCTAssertEqual(try client.keyspace(), before)
    }

    /// A standby waiting in BLPOP with a 30 s timeout is woken by the release at once: it
    /// returns true (a timeout returns false), takes the lease, and the hand-over id is gone.
    func testReleaseWakesAWaitingStandbyAtOnce() throws {
        let a = BeatLease(id: "beat@a:1:0001", leaseMs: leaseMs)
        XCTAssertTrue(try a.acquire(on: client, now: 1))
        try a.heartbeat(on: client, now: 1)
        let (endpoint, leaseMs) = (redis.endpoint, leaseMs)
        let woken = LockedBox<Bool?>(nil)
        let waiting = Thread {
            let standby = try? RedisConnection(endpoint: endpoint, readTimeoutMs: 60_000)
            let b = BeatLease(id: "beat@b:2:0002", leaseMs: leaseMs)
            woken.set(standby.flatMap { try? b.waitForHandover(on: $0, seconds: 30) } ?? false)
        }
        waiting.start()
        XCTAssertTrue(try eventually { try self.client.info("clients", "blocked_clients") == 1 })
        let started = Date()
        XCTAssertTrue(try a.release(on: client))
        XCTAssertTrue(eventually(timeout: 10) { woken.get() != nil })
        XCTAssertEqual(woken.get(), true)
        XCTAssertLessThan(Date().timeIntervalSince(started), 10, "woken by the hand-over, not the 30 s timeout")
        XCTAssertFalse(a.isLeader)
        XCTAssertEqual(
            try client.keyspace(),
            [BeatKeys.leadership: "hash:" + ["changes=1", "id=beat@a:1:0001", "since=1"].description])
        let b = BeatLease(id: "beat@b:2:0002", leaseMs: leaseMs)
        XCTAssertTrue(try b.acquire(on: client, now: 5))
        XCTAssertEqual(
            try client.keyspace(),
            [
                BeatKeys.leader: "string:beat@b:2:0002",
                BeatKeys.leadership: "hash:" + ["changes=2", "id=beat@b:2:0002", "since=5"].description,
            ])
    }

    /// The leader prunes schedulers not seen for three leases; it leaves on release.
    func testHeartbeatPrunesStaleSchedulers() throws {
        let a = BeatLease(id: "beat@a:1:0001", leaseMs: leaseMs)
        try client.command("ZADD", BeatKeys.schedulers, "999", "beat@gone:9:0009", "9000", "beat@c:3:0003")
        XCTAssertTrue(try a.acquire(on: client, now: 10_000))
        try a.heartbeat(on: client, now: 10_000)
        XCTAssertEqual(
            try client.keyspace()[BeatKeys.schedulers],
            "zset:" + ["beat@c:3:0003=9000", "beat@a:1:0001=10000"].description)
        try a.release(on: client)
        XCTAssertEqual(try client.keyspace()[BeatKeys.schedulers], "zset:" + ["beat@c:3:0003=9000"].description)
    }

    /// The send script: only the lease holder writes, and only a due time later than the
    /// recorded one; a record-only call writes `due`/`next` and sends nothing.
    func testSendScriptFencesNonLeaderAndHandledDueTimes() throws {
        let a = BeatLease(id: "beat@a:1:0001", leaseMs: leaseMs)
        XCTAssertTrue(try a.acquire(on: client, now: 1))
        let entry = ScheduleEntry(name: "tick", task: "add", schedule: .interval(seconds: 1), args: [1, 2])
        let leader = BeatSender(id: "beat@a:1:0001")
        let other = BeatSender(id: "beat@b:2:0002")
        let before = try client.keyspace()
        XCTAssertEqual(
            try other.send([.init(entry: entry, due: 1000, next: 2000, send: true)], on: client) { 1005 }, [.notLeader])
        XCTAssertEqual(try client.keyspace(), before, "nothing written")

        XCTAssertEqual(
            try leader.send([.init(entry: entry, due: 1000, next: 2000, send: false)], on: client) { 1005 },
            [.recorded])
        var state = before
        state[BeatKeys.entry("tick")] = "hash:" + ["due=1000", "next=2000"].description
        state["_kombu.binding.celery"] =
            "set:"
            + [QueueKeys.bindingMember(routingKey: "celery", queue: "celery")]
            .description
        XCTAssertEqual(try client.keyspace(), state)

        let earliest = try client.redisMillis()
        let outcomes = try leader.send(
            [
                .init(entry: entry, due: 1000, next: 2000, send: true),
                .init(entry: entry, due: 2000, next: 3000, send: true),
            ], on: client
        ) { 2004 }
        let latest = try client.redisMillis()
        XCTAssertEqual(outcomes.count, 2)
        XCTAssertEqual(outcomes.first, .handled, "1000 is recorded already")
        guard case .sent(let taskId, let sentAt)? = outcomes.last else { return XCTFail("\(outcomes)") }
        // sent_at is Redis's TIME inside the script (not the scheduler's 2004 estimate).
        XCTAssertTrue((earliest...latest).contains(sentAt), "\(sentAt) not in \(earliest)...\(latest)")
        let message = BeatMessage.message(for: entry, sentAt: 2.004, id: taskId)
        state[BeatKeys.entry("tick")] =
            "hash:" + ["count=1", "due=2000", "next=3000", "sent_at=\(sentAt)", "task_id=\(taskId)"].description
        var after = try client.keyspace()
        let queued = try client.command("LRANGE", "celery", "0", "-1").elements?.compactMap(\.bytes) ?? []
        XCTAssertEqual(queued.count, 1)
        XCTAssertEqual(
            try queued.map { try envelopeBlankingRandomProperties($0) },
            [try envelopeBlankingRandomProperties(Array(BeatMessage.envelope(of: message, for: entry).utf8))])
        after["celery"] = nil
        XCTAssertEqual(after, state)
    }

    /// After SCRIPT FLUSH the pipelined sends load the script again and go through.
    func testSendAfterScriptFlush() throws {
        let a = BeatLease(id: "beat@a:1:0001", leaseMs: leaseMs)
        XCTAssertTrue(try a.acquire(on: client, now: 1))
        let entry = ScheduleEntry(name: "tick", task: "add", schedule: .interval(seconds: 1))
        let sender = BeatSender(id: "beat@a:1:0001")
        XCTAssertEqual(
            try sender.send([.init(entry: entry, due: 1000, next: 2000, send: false)], on: client) { 1 }, [.recorded])
        try client.command("SCRIPT", "FLUSH")
        let outcomes = try sender.send(
            [
                .init(entry: entry, due: 2000, next: 3000, send: true),
                .init(entry: entry, due: 3000, next: 4000, send: true),
            ], on: client
        ) { 3001 }
        XCTAssertEqual(outcomes.count, 2)
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 2)
        XCTAssertEqual(try client.command("HGET", BeatKeys.entry("tick"), "due").text, "3000")
        // Pipelined batches (600 entries: 3 script calls, the second written before the first's
        // reply is read): both refused after a flush are run again, in order, and all go through.
        try client.command("SCRIPT", "FLUSH")
        let many = (0..<600).map {
            BeatSender.Request(
                entry: ScheduleEntry(name: "e\($0)", task: "add", schedule: .interval(seconds: 1)), due: 5000,
                next: 6000, send: true)
        }
        let sent = try sender.send(many, on: client) { 5001 }
        XCTAssertEqual(sent.count, 600)
        XCTAssertEqual(sent.filter { if case .sent = $0 { return true } else { return false } }.count, 600)
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 602)
        XCTAssertEqual(try client.command("HGET", BeatKeys.entry("e599"), "due").text, "5000")
    }
}
