/// The real wall clock.
public struct SystemClock: WallClock {
    public init() {}
    public func now() -> Double { CeleryTime.now() }
}
