import Logging

/// Returns a dead worker's deliveries to their queues (asynq's recoverer): every
/// `interval` seconds, the `unacked` records whose lease is older than the
/// visibility timeout, and the claiming lists registered before it. Leases are judged
/// in Redis's time (`LeaseClock`, measured on each new connection first), so a worker
/// whose clock runs ahead does not take a live peer's deliveries. Each restore is
/// counted in the message; one whose restores ran out (`RedeliveryLimit`) goes to the
/// dead-letter list instead of crash-looping the fleet.
///
///     var recoverer = Recoverer(visibilityTimeout: 3600, interval: 10, clock: leaseClock, redeliveries: limit)
///     try recoverer.pass(now: clock.now(), on: redis, logger: log)
struct Recoverer {
    let visibilityTimeout: Double
    let interval: Double
    /// This worker's view of Redis's time.
    let clock: LeaseClock
    /// Restores allowed per message before it is dead-lettered (nil: not counted).
    let redeliveries: RedeliveryLimit?
    private(set) var nextPass = 0.0
    private let restore = DeliveryRestore()

    init(visibilityTimeout: Double, interval: Double, clock: LeaseClock, redeliveries: RedeliveryLimit?) {
        self.visibilityTimeout = visibilityTimeout
        self.interval = interval
        self.clock = clock
        self.redeliveries = redeliveries
    }

    /// Whether a pass is due, or the lease clock's measurement (a new connection, a minute
    /// gone by: `LeaseClock.isDue`).
    func isDue(_ now: Double) -> Bool { now >= nextPass || clock.isDue(now) }

    /// One pass, when due: the lease clock measured first when that is due, then the
    /// restores when they are.
    mutating func pass(now: Double, on r: RedisConnection, logger: Logger) throws(RedisError) {
        guard isDue(now) else { return }
        if !clock.isMeasured(on: r) || clock.isDue(now) {
            let was = clock.offset
            try clock.measure(on: r)
            if abs(clock.offset) > 1 && abs(clock.offset - was) > 1 {
                logger.warning(
                    "this worker's clock is \(clock.offset) s behind Redis's; leases are judged in Redis's time")
            }
        }
        guard now >= nextPass else { return }
        nextPass = now + interval
        let redisNow = clock.redisTime(now)
        let n = try restore.recover(
            on: r, visibilityTimeout: visibilityTimeout, now: redisNow, redeliveries: redeliveries)
        let moved = try ClaimByMove.restoreStale(
            ceiling: redisNow - visibilityTimeout, on: r, redeliveries: redeliveries, now: redisNow)
        if n.restored > 0 {
            logger.warning("restored \(n.restored) unacknowledged message(s) past the visibility timeout")
        }
        if moved.restored > 0 {
            logger.warning("restored \(moved.restored) message(s) from a dead worker's claiming list")
        }
        let dead = n.deadLettered + moved.deadLettered
        if dead > 0, let redeliveries {
            logger.error(
                "moved \(dead) message(s) whose lease expired more than \(redeliveries.max) times to \(redeliveries.deadLetterKey)"
            )
        }
    }
}
