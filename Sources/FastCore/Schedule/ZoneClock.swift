import Foundation

/// Converts between instants and wall-clock ("local") seconds in a Foundation
/// `TimeZone` with the rules of Python's `zoneinfo` (PEP 495), which Celery's
/// crontab relies on. Local seconds count seconds since 1970-01-01 00:00 on the
/// wall clock, as if the zone were UTC.
///
///     let clock = ZoneClock(TimeZone(identifier: "Europe/Berlin")!)
///     clock.instant(local: 1_774_751_400, fold: 0)  // 2026-03-29 02:30 (in the gap) -> 01:30 UTC, i.e. 03:30 CEST
public struct ZoneClock: Sendable {
    /// The zone.
    public let zone: TimeZone

    /// A clock for `zone`.
    ///
    ///     ZoneClock(TimeZone(identifier: "America/New_York")!)
    public init(_ zone: TimeZone) { self.zone = zone }

    /// UTC offset in seconds at an instant (seconds since 1970).
    public func offset(atInstant t: Int) -> Int {
        zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(t)))
    }

    /// Local (wall-clock) seconds of an instant.
    ///
    ///     clock.local(instant: 0)
    public func local(instant t: Int) -> Int { t + offset(atInstant: t) }

    /// The offsets in force a day before and a day after a wall time (equal unless a transition is near).
    private func offsets(aroundLocal l: Int) -> (before: Int, after: Int) {
        (offset(atInstant: l - 86_400), offset(atInstant: l + 86_400))
    }

    /// The instant of a wall time. `fold` 0 picks the first of two occurrences
    /// (fall-back) and, for a time in a gap (spring-forward), uses the offset
    /// before the transition (so 02:30 in a 02:00-03:00 gap is 03:30 after it);
    /// `fold` 1 picks the second occurrence / the offset after the transition.
    ///
    ///     clock.instant(local: l, fold: 0)
    public func instant(local l: Int, fold: Int = 0) -> Int {
        let (before, after) = offsets(aroundLocal: l)
        if before == after { return l - before }
        let tb = l - before
        let ta = l - after
        let validB = offset(atInstant: tb) == before
        let validA = offset(atInstant: ta) == after
        if validB && !validA { return tb }
        if validA && !validB { return ta }
        return fold == 0 ? tb : ta
    }

    /// Whether a wall time does not exist (skipped by a spring-forward change); if so, how long the gap is.
    ///
    ///     clock.gap(local: l)  // 3600 inside the gap, nil otherwise
    public func gap(local l: Int) -> Int? {
        let (before, after) = offsets(aroundLocal: l)
        guard before != after else { return nil }
        let validB = offset(atInstant: l - before) == before
        let validA = offset(atInstant: l - after) == after
        return !validB && !validA && after > before ? after - before : nil
    }
}
