/// Token buckets per task name, as Celery's `rate_limit` task option: a task
/// over its rate is held, claimed but not started, until a token frees up.
///
///     var limiter = RateLimiter()
///     limiter.set("fetch", RateLimit("10/s"))
///     let wait = limiter.reserve("fetch", now: clock.now())  // 0 = start now
public struct RateLimiter: Sendable {
    private struct Bucket {
        var rate: Double
        var tokens: Double
        var updated: Double
    }

    private var buckets: [String: Bucket] = [:]

    public init() {}

    /// Set or clear (nil, or a zero rate) the limit for a task name.
    public mutating func set(_ task: String, _ limit: RateLimit?) {
        guard let limit, limit.perSecond > 0, limit.perSecond.isFinite else {
            buckets[task] = nil
            return
        }
        buckets[task] = Bucket(rate: limit.perSecond, tokens: 1, updated: -1)
    }

    /// The rate in force for a task, if any.
    public func rate(_ task: String) -> Double? { buckets[task]?.rate }

    /// Take a token: 0 when the task may start now, else the seconds until it may.
    public mutating func reserve(_ task: String, now: Double) -> Double {
        guard var b = buckets[task] else { return 0 }
        let burst = max(1, b.rate)
        if b.updated < 0 { b.updated = now }
        b.tokens = min(burst, b.tokens + (now - b.updated) * b.rate)
        b.updated = now
        let wait: Double
        if b.tokens >= 1 {
            b.tokens -= 1
            wait = 0
        } else {
            // At most one token's time at the slowest rate `RateLimit` reads (a day).
            wait = min((1 - b.tokens) / b.rate, 1 / RateLimit.minimumPerSecond)
        }
        buckets[task] = b
        return wait
    }
}
