/// Where time comes from, so timeouts can be tested without waiting.
///
///     let clock: any WallClock = SystemClock()
///     let deadline = clock.now() + 30
public protocol WallClock: Sendable {
    /// Seconds since the epoch.
    func now() -> Double
}
