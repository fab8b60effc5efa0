import Foundation

/// An entry's `ScheduleEntry.Schedule` compiled for the scheduler: due times are integer
/// milliseconds since the epoch (on Redis's clock), and `next(after:)` is always strictly
/// later than its argument, so a chain of due times `d1 = next(after: handled)`,
/// `d2 = next(after: d1)`, ... never repeats or stalls.
///
/// - Interval entries: `next(after: d) = d + interval` (the interval's seconds in ms,
///   rounded, at least 1), so due times stay aligned to the first one (no drift).
/// - Crontab entries: `Crontab.nextRun(after:in:)` in the entry's time zone (else the
///   default zone, else UTC). Where Celery's fall-back rule gives a wall time whose first
///   occurrence is not after the instant given (the instant is in the second pass of a
///   repeated hour), the next wall times are walked until one is later.
///
///     let due = try DueSchedule(.crontab("0 3 * * *", timezone: nil), defaultZone: "Europe/Berlin")
///     let next = try due.next(after: handledMs)
public struct DueSchedule: Sendable, Equatable {
    private enum Kind: Sendable, Equatable {
        case interval(Int64)
        case crontab(Crontab, TimeZone)
    }

    private let kind: Kind

    /// The longest interval accepted, in ms (about 292 years): keeps `due + interval` far from overflow.
    static let longestIntervalMs: Int64 = 1 << 53

    /// Instants accepted by `next(after:)` lie within ±2^56 ms (about ±2.3 million years).
    static let farthestMs: Int64 = 1 << 56

    /// The walk past a fall-back's repeated hour: at most this many wall times are tried.
    static let walkLimit = 2_000

    /// Compiles `schedule`; a crontab without its own zone uses `defaultZone`, then UTC.
    /// Throws for a crontab that does not parse, an unknown zone or an interval that is not a
    /// positive number of seconds (or is longer than ~292 years).
    ///
    ///     let every10s = try DueSchedule(.interval(seconds: 10), defaultZone: nil)
    public init(_ schedule: ScheduleEntry.Schedule, defaultZone: String?) throws(CrontabError) {
        switch schedule {
        case .interval(let seconds):
            let checked = try IntervalSchedule(seconds: seconds)
            let ms = (checked.seconds * 1000).rounded()
            guard ms < Double(Self.longestIntervalMs) else {
                throw CrontabError(field: "interval", message: "interval too long: \(seconds) seconds")
            }
            kind = .interval(max(1, Int64(ms)))
        case .crontab(let expression, let timezone):
            let name = timezone ?? defaultZone ?? "UTC"
            guard let zone = TimeZone(identifier: name) else {
                throw CrontabError(field: "timezone", message: "unknown time zone \(CrontabField.quoted(name))")
            }
            kind = .crontab(try Crontab(expression: expression), zone)
        }
    }

    /// The interval in ms for an interval entry; nil for a crontab.
    ///
    ///     if let step = due.interval { last = handled + k * step }
    public var interval: Int64? {
        if case .interval(let ms) = kind { return ms }
        return nil
    }

    /// The first due time strictly after `ms` (ms since the epoch). Throws where the crontab
    /// has no next run (past year 9999) or `ms` is out of range (beyond ±`farthestMs`).
    ///
    ///     let d2 = try due.next(after: d1)  // d2 > d1
    public func next(after ms: Int64) throws(CrontabError) -> Int64 {
        switch kind {
        case .interval(let step):
            guard ms > -Self.farthestMs, ms < Self.farthestMs else {
                throw CrontabError(field: "interval", message: "instant out of range")
            }
            let (sum, overflow) = ms.addingReportingOverflow(step)
            guard !overflow else { throw CrontabError(field: "interval", message: "instant out of range") }
            return sum
        case .crontab(let crontab, let zone):
            guard ms > -Self.farthestMs, ms < Self.farthestMs else {
                throw CrontabError(field: "expression", message: "instant out of range")
            }
            var from = ms
            var previous: Int64?
            for _ in 0..<Self.walkLimit {
                let run = Self.milliseconds(
                    try crontab.nextRun(after: Date(timeIntervalSince1970: Double(from) / 1000), in: zone))
                if run > ms { return run }
                // Celery's fall-back quirk: `ms` is in the second pass of a repeated hour and `run` is
                // the first pass of the next wall time. Walk the wall times on from `run`; should a
                // run ever not advance, move a minute past the furthest instant tried instead.
                if let previous, run <= previous {
                    from = max(from, ms) + 60_000
                } else {
                    from = run
                }
                previous = run
            }
            throw CrontabError(field: "expression", message: "no run found after \(ms) ms")
        }
    }

    /// Integer ms of a `Crontab` result (whole seconds, so exact).
    private static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }
}
