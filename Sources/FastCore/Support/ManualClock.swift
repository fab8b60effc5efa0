/// A clock a test moves by hand.
public final class ManualClock: WallClock, @unchecked Sendable {
    private let value: LockedBox<Double>
    public init(_ start: Double = 1_000_000) { value = LockedBox(start) }
    public func now() -> Double { value.get() }
    public func advance(_ seconds: Double) { value.modify { $0 += seconds } }
}
