@testable import FastCore
import Foundation
import Logging
import XCTest

/// Leases live on one clock, Redis's: the claim script stamps them with `TIME`, and a
/// worker renews and judges them with its own clock plus its measured offset to Redis's.
/// A worker whose clock is 30 s off (a `ManualClock` set so) with a 10 s visibility
/// timeout neither takes a live peer's delivery nor lets its own lease look old.
final class LeaseClockTests: RedisTestCase {
    let visibilityTimeout = 10.0
    let skew = 30.0

    /// Redis's clock, in seconds.
    func redisNow() throws -> Double {
        let parts = try client.command("TIME").elements ?? []
        let seconds = try XCTUnwrap(parts.first?.text.flatMap(Double.init))
        let micros = try XCTUnwrap(parts.last?.text.flatMap(Double.init))
        return seconds + micros / 1e6
    }

    func lease(_ tag: String) throws -> Double? {
        try client.command("ZSCORE", "unacked_index", tag).text.flatMap(Double.init)
    }

    /// A worker 30 s ahead of Redis: a lease another worker took a moment ago is live in
    /// Redis's time (its own clock would call it 20 s past the visibility timeout) and
    /// stays; a lease really older than the timeout is restored in the same pass.
    func testWorkerAheadOfRedisLeavesALiveLeaseAndRestoresAnExpiredOne() throws {
        let live = TaskMessage(task: "add", args: [1, 1])
        let expired = TaskMessage(task: "add", args: [2, 2])
        try enqueue([live, expired])
        XCTAssertEqual(try DeliveryClaim().claim(on: client, queues: ["celery"], max: 2).count, 2)
        let liveLease = try XCTUnwrap(try lease(live.deliveryTag))
        try client.command("ZADD", "unacked_index", "XX", String(Int(try redisNow()) - 100), expired.deliveryTag)

        let worker = InProcessWorker(
            redis: redis, queues: ["idle"], clock: ManualClock(CeleryTime.now() + skew),
            visibilityTimeout: visibilityTimeout, hostname: "ahead@test")
        XCTAssertTrue(try eventually(timeout: 10) { try self.client.command("EXISTS", "celery").integer == 1 })
        worker.stop()
        let queued = try client.command("LRANGE", "celery", "0", "-1").elements?.compactMap(\.bytes) ?? []
        XCTAssertEqual(try queued.map { try TaskMessage.decode($0).id }, [expired.id], "only the expired one")
        XCTAssertEqual(try client.command("HKEYS", "unacked").elements?.compactMap(\.text), [live.deliveryTag])
        XCTAssertEqual(try lease(live.deliveryTag), liveLease, "the live lease is untouched")
    }

    /// A worker 30 s behind Redis renews the lease of what it runs in Redis's time: a
    /// peer with a right clock and a 10 s visibility timeout sees a live lease, not one
    /// 30 s old.
    func testWorkerBehindRedisRenewsItsLeasesInRedisTime() throws {
        let release = DispatchSemaphore(value: 0)
        let started = LockedBox(false)
        let clock = ManualClock(CeleryTime.now() - skew)
        let worker = InProcessWorker(
            redis: redis, clock: clock, visibilityTimeout: visibilityTimeout, hostname: "behind@test",
            register: { registry in
                registry.register("hold") { _ in
                    started.set(true)
                    release.wait()
                    return .null
                }
            })
        let m = TaskMessage(task: "hold", args: [])
        try enqueue([m])
        XCTAssertTrue(eventually(timeout: 10) { started.get() })
        // Mark the lease old, then let a renewal come due on the worker's clock.
        try client.command("ZADD", "unacked_index", "XX", "1000", m.deliveryTag)
        clock.advance(2)
        XCTAssertTrue(try eventually(timeout: 10) { try self.lease(m.deliveryTag) != 1000 })
        let renewed = try XCTUnwrap(try lease(m.deliveryTag))
        XCTAssertEqual(renewed, try redisNow(), accuracy: 3, "stamped in Redis's time, not 30 s behind it")
        // A peer with Redis's clock finds nothing stale.
        XCTAssertEqual(
            try DeliveryRestore().recoverStale(on: client, visibilityTimeout: visibilityTimeout, now: try redisNow()), 0
        )
        release.signal()
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id)?["status"] == "SUCCESS" })
        worker.stop()
        XCTAssertEqual(try client.command("EXISTS", "unacked", "unacked_index").integer, 0)
    }

    /// A worker 30 s behind Redis claiming by move stamps a claim's `unacked` records (and
    /// its registration, with the same stamp) in Redis's time too (a one-message claim bound makes it move one
    /// at a time, so claims by move follow the first, the script's).
    func testWorkerBehindRedisStampsClaimsByMoveInRedisTime() throws {
        let release = DispatchSemaphore(value: 0)
        let messages = (0..<12).map { _ in TaskMessage(task: "hold", args: []) }
        try enqueue(messages)
        try client.command("CONFIG", "RESETSTAT")
        let worker = InProcessWorker(
            redis: redis, concurrency: 1, prefetch: 8, claimByMove: true, clock: ManualClock(CeleryTime.now() - skew),
            visibilityTimeout: visibilityTimeout, hostname: "behind@test",
            register: { registry in
                registry.register("hold") { _ in
                    release.wait()
                    return .null
                }
            }, configure: { $0.maxClaimBytes = 1 })
        XCTAssertTrue(try eventually(timeout: 10) { try self.client.command("HLEN", "unacked").integer == 8 })
        let stats = try client.command("INFO", "commandstats").text ?? ""
        XCTAssertTrue(stats.contains("cmdstat_sort:calls="), "claimed by move")
        let now = try redisNow()
        let scores = try client.command("ZRANGE", "unacked_index", "0", "-1", "WITHSCORES").elements?.compactMap(\.text)
        for i in stride(from: 1, to: scores?.count ?? 0, by: 2) {
            let lease = try XCTUnwrap(scores.flatMap { Double($0[i]) })
            XCTAssertEqual(lease, now, accuracy: 3, "stamped in Redis's time, not 30 s behind it")
        }
        XCTAssertEqual(scores?.count, 16)
        for _ in messages { release.signal() }
        XCTAssertTrue(try eventually(timeout: 20) { try self.client.resultCount() == 12 })
        worker.stop()
    }

    /// A wall clock that can be stepped (as NTP or an operator steps the system clock).
    final class SteppedClock: WallClock, @unchecked Sendable {
        let step = LockedBox(0.0)
        func now() -> Double { CeleryTime.now() + step.get() }
    }

    /// The system clock stepped an hour ahead while the worker runs: the lease clock is
    /// measured again (the step is more than a minute of the worker's clock), so its view of
    /// Redis's time stays Redis's. Before, the offset was anchored at start plus monotonic
    /// time and measured once per connection: the step became a permanent hour of skew.
    func testSteppedSystemClockIsMeasuredAgain() throws {
        let wall = SteppedClock()
        let leaseClock = LeaseClock(clock: wall)
        var recoverer = Recoverer(visibilityTimeout: 3600, interval: 10, clock: leaseClock, redeliveries: nil)
        let logger = Logger(label: "test")
        try recoverer.pass(now: wall.now(), on: client, logger: logger)
        XCTAssertEqual(leaseClock.redisTime(wall.now()), try redisNow(), accuracy: 1)
        wall.step.set(3600)
        XCTAssertTrue(recoverer.isDue(wall.now()))
        try recoverer.pass(now: wall.now(), on: client, logger: logger)
        XCTAssertEqual(leaseClock.redisTime(wall.now()), try redisNow(), accuracy: 1, "the step is measured away")
        // And measured again on a new connection (a reconnect), however little time passed:
        // a 10 s step is under a minute of the worker's clock.
        wall.step.set(3610)
        XCTAssertFalse(leaseClock.isDue(wall.now()))
        let other = try redis.client()
        try recoverer.pass(now: wall.now(), on: other, logger: logger)
        XCTAssertEqual(leaseClock.redisTime(wall.now()), try redisNow(), accuracy: 1, "measured on the new connection")
    }

    /// A lease stamp is whole seconds rounded up; a time that is not finite or beyond
    /// ±1e15 s is clamped (`Int(Double)` would trap on it).
    func testLeaseStampsClampInsteadOfTrapping() {
        XCTAssertEqual(Leases.stamp(1_796_392_176.2), "1796392177")
        XCTAssertEqual(Leases.stamp(.nan), "-1000000000000000")
        XCTAssertEqual(Leases.stamp(.infinity), "1000000000000000")
        XCTAssertEqual(Leases.stamp(-.infinity), "-1000000000000000")
        XCTAssertEqual(Leases.stamp(1e300), "1000000000000000")
        XCTAssertEqual(Leases.stamp(-1e300), "-1000000000000000")
    }
}
