import Foundation

/// Celery's `schedule(run_every=N)` (non-relative): an entry that runs every `seconds`
/// seconds of real time, counted from its last run (DST changes do not matter: the
/// interval is elapsed time, as Celery computes it in UTC).
///
///     let every = try IntervalSchedule(seconds: 30)
///     let state = every.isDue(lastRun: last, now: Date())
public struct IntervalSchedule: Sendable, Equatable {
    /// The interval in seconds (> 0).
    public let seconds: TimeInterval

    /// An interval; throws for a non-finite or non-positive one (Celery would treat it
    /// as always due, which a scheduler must not do).
    ///
    ///     let every = try IntervalSchedule(seconds: 1)
    public init(seconds: TimeInterval) throws(CrontabError) {
        guard seconds.isFinite, seconds > 0 else {
            throw CrontabError(
                field: "interval", message: "interval must be a positive number of seconds, got \(seconds)")
        }
        self.seconds = seconds
    }

    /// The next run after a run at `lastRun`.
    ///
    ///     every.nextRun(after: last)
    public func nextRun(after lastRun: Date) -> Date { lastRun.addingTimeInterval(seconds) }

    /// Celery's `schedule.is_due`: due when `seconds` have passed since `lastRun`; `next`
    /// is the seconds until due, or the full interval when due now.
    ///
    ///     every.isDue(lastRun: last, now: Date())
    public func isDue(lastRun: Date, now: Date) -> ScheduleState {
        let remaining = max(nextRun(after: lastRun).timeIntervalSince(now), 0)
        return remaining == 0 ? ScheduleState(isDue: true, next: seconds) : ScheduleState(isDue: false, next: remaining)
    }
}
