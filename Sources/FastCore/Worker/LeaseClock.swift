/// The one clock leases are stamped and judged by: Redis's `TIME`. The claim script
/// stamps a lease with it; a worker's own stamps (renewals, a claim by move's records
/// and registrations) and its judgement of which leases are stale (`Recoverer`) use its
/// clock plus its offset to Redis's, measured when it first uses a connection. So a
/// worker whose clock is seconds off neither restores a live peer's deliveries nor lets
/// its own look older or newer than they are.
///
/// The offset is measured again on each new connection (a reconnect, a Redis restart);
/// between connections the worker's clock runs it (a step of the system clock shifts it
/// until the next connection; `ManualClock` tests move time this way).
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

    init(clock: any WallClock) { self.clock = clock }

    /// Whether the offset was measured on `redis` already.
    func isMeasured(on redis: RedisConnection) -> Bool { measuredOn === redis }

    /// Measure the offset with `TIME`, against the middle of the round trip.
    func measure(on redis: RedisConnection) throws(RedisError) {
        let before = clock.now()
        let reply = try redis.command("TIME")
        let after = clock.now()
        guard let parts = reply.elements, parts.count == 2, let seconds = parts[0].text.flatMap(Double.init),
            let micros = parts[1].text.flatMap(Double.init)
        else { throw .reply("TIME returned \(reply)") }
        offset = seconds + micros / 1e6 - (before + after) / 2
        measuredOn = redis
    }

    /// Redis's time when this worker's clock reads `now`.
    func redisTime(_ now: Double) -> Double { now + offset }

    /// A lease stamp (`Leases.stamp`) in Redis's time, for this worker's `now`.
    func stamp(_ now: Double) -> String { Leases.stamp(redisTime(now)) }
}
