/// Grows the executor pool when work waits and shrinks it after idleness,
/// between `min` and `max` slots (Celery's `--autoscale=MAX,MIN`, made to
/// work: it counts the Redis backlog, not only what the worker prefetched).
///
///     var scaler = Autoscaler(max: 10, min: 3)
///     if let n = scaler.decide(now: t, size: pool.size, demand: busy + queued + backlog) { pool.resize(to: n) }
public struct Autoscaler: Sendable {
    public let max: Int
    public let min: Int
    /// Seconds demand must stay below the pool size before it shrinks (hysteresis).
    public var keepalive: Double
    private var lowSince: Double?

    /// `max` and `min` are kept within 1...`ControlRequest.maxConcurrency`, `min` ≤ `max`.
    public init(max: Int, min: Int, keepalive: Double = 30) {
        let max = Swift.min(Swift.max(1, max), ControlRequest.maxConcurrency)
        self.max = max
        self.min = Swift.max(1, Swift.min(min, max))
        self.keepalive = keepalive
    }

    /// The new pool size, or nil to keep it. Grows at once to cover demand;
    /// shrinks one step per call once demand stayed lower for `keepalive`.
    public mutating func decide(now: Double, size: Int, demand: Int) -> Int? {
        let wanted = Swift.min(max, Swift.max(min, demand))
        if wanted > size {
            lowSince = nil
            return wanted
        }
        if wanted < size {
            let since = lowSince ?? now
            lowSince = since
            if now - since >= keepalive {
                lowSince = now
                return Swift.max(wanted, size - Swift.max(1, (size - wanted + 1) / 2))
            }
            return nil
        }
        lowSince = nil
        return nil
    }
}
