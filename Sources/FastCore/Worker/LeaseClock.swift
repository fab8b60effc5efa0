import Dispatch

/// The one clock leases are stamped and judged by: Redis's `TIME`. The claim script
/// stamps a lease with it; a worker's own stamps (renewals, a claim by move's records
/// and registrations) and its judgement of which leases are stale (`Recoverer`) use its
/// clock plus its offset to Redis's. So a worker whose clock is seconds off neither
/// restores a live peer's deliveries nor lets its own look older or newer than they are.
///
/// The offset is measured on each new connection (a reconnect, a Redis restart), against
/// what the worker's clock read when the worker was made plus the monotonic time since:
/// the skew between the two clocks is taken out, while how the worker's clock moves
/// after it starts still counts (a `ManualClock` advanced by a test, before or after the
/// first connection, moves the worker's view of lease time with it; a system clock
/// stepped while the worker runs does too).
///
///     let leaseClock = LeaseClock(clock: SystemClock())
///     try leaseClock.measure(on: redis)
///     let ceiling = leaseClock.redisTime(clock.now()) - visibilityTimeout
final class LeaseClock {
    let clock: any WallClock
    /// Redis's time minus this worker's clock, in seconds (0 until measured).
    private(set) var offset = 0.0
    /// The connection the offset was measured on.
    private weak var measuredOn: RedisConnection?
    /// The worker's clock, and the monotonic clock, when this was made.
    private let startTime: Double
    private let startUptime: UInt64

    init(clock: any WallClock) {
        self.clock = clock
        startTime = clock.now()
        startUptime = DispatchTime.now().uptimeNanoseconds
    }

    /// Whether the offset was measured on `redis` already.
    func isMeasured(on redis: RedisConnection) -> Bool { measuredOn === redis }

    /// Measure the offset with `TIME`, against the middle of the round trip.
    func measure(on redis: RedisConnection) throws(RedisError) {
        let before = DispatchTime.now().uptimeNanoseconds
        let reply = try redis.command("TIME")
        let after = DispatchTime.now().uptimeNanoseconds
        guard let parts = reply.elements, parts.count == 2, let seconds = parts[0].text.flatMap(Double.init),
            let micros = parts[1].text.flatMap(Double.init), seconds.isFinite, micros.isFinite
        else { throw .reply("TIME returned \(reply)") }
        let sinceStart = ((Double(before) + Double(after)) / 2 - Double(startUptime)) / 1e9
        offset = seconds + micros / 1e6 - (startTime + sinceStart)
        measuredOn = redis
    }

    /// Redis's time when this worker's clock reads `now`.
    func redisTime(_ now: Double) -> Double { now + offset }

    /// A lease stamp (`Leases.stamp`) in Redis's time, for this worker's `now`.
    func stamp(_ now: Double) -> String { Leases.stamp(redisTime(now)) }
}
