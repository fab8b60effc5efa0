import Logging

/// Returns a dead worker's deliveries to their queues (asynq's recoverer): every
/// `interval` seconds, the `unacked` records whose lease is older than the
/// visibility timeout, and the claiming lists registered before it.
///
///     var recoverer = Recoverer(visibilityTimeout: 3600, interval: 10)
///     try recoverer.pass(now: clock.now(), on: redis, logger: log)
struct Recoverer {
    let visibilityTimeout: Double
    let interval: Double
    private(set) var nextPass = 0.0
    private let restore = DeliveryRestore()

    init(visibilityTimeout: Double, interval: Double) {
        self.visibilityTimeout = visibilityTimeout
        self.interval = interval
    }

    /// Whether a pass is due.
    func isDue(_ now: Double) -> Bool { now >= nextPass }

    /// One pass, when due.
    mutating func pass(now: Double, on r: RedisConnection, logger: Logger) throws(RedisError) {
        guard isDue(now) else { return }
        nextPass = now + interval
        let n = try restore.recoverStale(on: r, visibilityTimeout: visibilityTimeout, now: now)
        if n > 0 { logger.warning("restored \(n) unacknowledged message(s) past the visibility timeout") }
        let moved = try ClaimByMove.restoreStale(ceiling: now - visibilityTimeout, on: r)
        if moved > 0 { logger.warning("restored \(moved) message(s) from a dead worker's claiming list") }
    }
}
