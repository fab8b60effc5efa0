/// Where time comes from, so timeouts can be tested without waiting.
///
///     let clock: any WallClock = SystemClock()
///     let deadline = clock.now() + 30
public protocol WallClock: Sendable {
    /// Seconds since the epoch.
    func now() -> Double
}

/// The real wall clock.
public struct SystemClock: WallClock {
    public init() {}
    public func now() -> Double { CeleryTime.now() }
}

/// A clock a test moves by hand.
public final class ManualClock: WallClock, @unchecked Sendable {
    private let value: LockedBox<Double>
    public init(_ start: Double = 1_000_000) { value = LockedBox(start) }
    public func now() -> Double { value.get() }
    public func advance(_ seconds: Double) { value.modify { $0 += seconds } }
}
