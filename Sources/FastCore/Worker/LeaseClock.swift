import Dispatch

/// The one clock leases are stamped and judged by: Redis's `TIME`. The claim script
/// stamps a lease with it; a worker's own stamps (renewals, a claim by move's records
/// and registrations) and its judgement of which leases are stale (`Recoverer`) use its
/// clock plus its offset to Redis's. So a worker whose clock is seconds off neither
/// restores a live peer's deliveries nor lets its own look older or newer than they are.
///
/// The offset is measured on each new connection (a reconnect, a Redis restart) and
/// again every `remeasureInterval` seconds of the worker's clock (`isDue`). Against what:
///
/// - the system clock (`SystemClock`, any clock but a `ManualClock`): its reading at the
///   middle of the round trip, so a step of the system clock while the worker runs (NTP,
///   an operator) skews its leases for at most a minute;
/// - a `ManualClock` (a test's, advanced by hand): what it read when this was made plus
///   the monotonic time since, so an advance (before or after the first connection)
///   moves the worker's view of lease time with it instead of being measured away. A
///   hand-advanced clock cannot be told from a stepped one: it is the authority.
///
///     let leaseClock = LeaseClock(clock: SystemClock())
///     try leaseClock.measure(on: redis)
///     let ceiling = leaseClock.redisTime(clock.now()) - visibilityTimeout
final class LeaseClock {
    /// How often (seconds of the worker's clock) the offset is measured again.
    static let remeasureInterval = 60.0

    let clock: any WallClock
    /// Redis's time minus this worker's clock, in seconds (0 until measured).
    private(set) var offset = 0.0
    /// The connection the offset was measured on (nil once it is gone).
    private weak var measuredOn: RedisConnection?
    /// The worker's clock at the last measurement.
    private var measuredAt = 0.0
    /// Redis's time at the middle of the last measurement's round trip, and the monotonic
    /// clock then (`redisNow`).
    private var measuredRedis = 0.0
    private var measuredUptime: UInt64 = 0
    /// Whether the offset is taken against the start-anchored monotonic time (a `ManualClock`).
    private let anchored: Bool
    /// The worker's clock, and the monotonic clock, when this was made.
    private let startTime: Double
    private let startUptime: UInt64

    init(clock: any WallClock) {
        self.clock = clock
        anchored = clock is ManualClock
        startTime = clock.now()
        startUptime = DispatchTime.now().uptimeNanoseconds
    }

    /// Whether the offset was measured on `redis` already.
    func isMeasured(on redis: RedisConnection) -> Bool { measuredOn === redis }

    /// Whether the offset should be measured again at `now` (the worker's clock): never
    /// measured, its connection gone, or measured `remeasureInterval` ago or more (either
    /// way: a clock stepped back counts too).
    func isDue(_ now: Double) -> Bool {
        measuredOn == nil || !(abs(now - measuredAt) < Self.remeasureInterval)
    }

    /// Measure the offset with `TIME`, against the middle of the round trip.
    func measure(on redis: RedisConnection) throws(RedisError) {
        let before = DispatchTime.now().uptimeNanoseconds
        let wallBefore = clock.now()
        let reply = try redis.command("TIME")
        let wallAfter = clock.now()
        let after = DispatchTime.now().uptimeNanoseconds
        guard let parts = reply.elements, parts.count == 2, let seconds = parts[0].text.flatMap(Double.init),
            let micros = parts[1].text.flatMap(Double.init), seconds.isFinite, micros.isFinite,
            (0..<1e11).contains(seconds), (0..<1e6).contains(micros)
        else { throw .reply("TIME returned \(reply)") }
        let reference: Double
        if anchored {
            let sinceStart = ((Double(before) + Double(after)) / 2 - Double(startUptime)) / 1e9
            reference = startTime + sinceStart
        } else {
            reference = (wallBefore + wallAfter) / 2
        }
        guard (seconds + micros / 1e6 - reference).isFinite else { throw .reply("clock reads \(reference)") }
        offset = seconds + micros / 1e6 - reference
        measuredRedis = seconds + micros / 1e6
        measuredUptime = before / 2 + after / 2
        measuredOn = redis
        measuredAt = wallAfter
    }

    /// Redis's time when this worker's clock reads `now`.
    func redisTime(_ now: Double) -> Double { now + offset }

    /// Redis's time now, immune to steps of the system clock between measurements: the last
    /// measured Redis time plus the monotonic time since. A `ManualClock` (a test's) stays the
    /// authority: `redisTime(clock.now())`; so does any clock before the first measurement.
    ///
    ///     let nowMs = leaseClock.redisNow() * 1000
    func redisNow() -> Double {
        guard !anchored, measuredUptime != 0 else { return redisTime(clock.now()) }
        let uptime = DispatchTime.now().uptimeNanoseconds
        return measuredRedis + (Double(uptime) - Double(measuredUptime)) / 1e9
    }

    /// A lease stamp (`Leases.stamp`) in Redis's time, for this worker's `now`.
    func stamp(_ now: Double) -> String { Leases.stamp(redisTime(now)) }
}
