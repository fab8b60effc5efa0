import Foundation

/// Celery 5.7's `crontab` schedule: the same fields, the same parsing (see
/// `CrontabField`) and the same next-run computation as
/// `celery.schedules.crontab.remaining_estimate`, in an IANA time zone.
///
/// Fields: `minute` 0-59, `hour` 0-23, `dayOfWeek` 0-6 with Sunday = 0 (names
/// `sun`..`sat`), `dayOfMonth` 1-31, `monthOfYear` 1-12 (names `jan`..`dec`). A day
/// runs only if it matches all three day fields (Celery's rule, unlike cron's "either
/// day of month or day of week"). As in Celery, a crontab whose days of month never
/// occur in its months (`30` of `2`) is refused.
///
/// The next run after an instant `t` is computed the way Celery does it: `t` is
/// converted to wall-clock time in the zone, the next matching wall-clock time is
/// found by Celery's own steps (same minute/hour/day search, including its quirks),
/// and that wall time is converted back to an instant with Python's `fold=0`:
/// - **Spring forward (a wall time that does not exist):** the run happens at the
///   wall time pushed forward by the gap, e.g. `30 2 * * *` in Europe/Berlin on
///   2026-03-29 runs at 03:30 CEST (01:30 UTC); hourly-and-faster entries get no
///   run for the skipped hour.
/// - **Fall back (a wall time that occurs twice):** the first occurrence is used, so
///   `30 2 * * *` runs once, at 02:30 CEST; an entry whose last run is in the first
///   pass of the repeated hour moves on to the next hour after it, skipping the
///   second pass. If the instant given is itself in the second pass of the repeated
///   hour and the next wall time is in that hour, Celery (and this type) returns its
///   first occurrence, which is before the instant given: the run is due at once.
///
///     let c = try Crontab(expression: "*/15 9-17 * * mon-fri")
///     let next = try c.nextRun(after: Date(), in: TimeZone(identifier: "Europe/Berlin")!)
public struct Crontab: Sendable, Equatable {
    /// Minutes (0-59) at which the entry runs.
    public let minutes: Set<Int>
    /// Hours (0-23).
    public let hours: Set<Int>
    /// Days of the week (0-6, Sunday = 0).
    public let daysOfWeek: Set<Int>
    /// Days of the month (1-31).
    public let daysOfMonth: Set<Int>
    /// Months (1-12).
    public let monthsOfYear: Set<Int>
    /// The field texts as given (Celery's `_orig_*`), in the order minute, hour, day of week, day of month, month.
    public let specs: [String]

    private var allDaysOfMonthAndMonths: Bool { specs[3] == "*" && specs[4] == "*" }

    /// A crontab from Celery's keyword fields (each a Celery cronspec string; `"*"` by default).
    ///
    ///     let c = try Crontab(minute: "0", hour: "*/3", dayOfWeek: "sat,sun")
    public init(
        minute: String = "*", hour: String = "*", dayOfWeek: String = "*", dayOfMonth: String = "*",
        monthOfYear: String = "*"
    ) throws(CrontabError) {
        hours = try CrontabField.parse(hour, field: "hour", max: 24, min: 0)
        minutes = try CrontabField.parse(minute, field: "minute", max: 60, min: 0)
        daysOfWeek = try CrontabField.parse(dayOfWeek, field: "day_of_week", max: 7, min: 0)
        daysOfMonth = try CrontabField.parse(dayOfMonth, field: "day_of_month", max: 31, min: 1)
        monthsOfYear = try CrontabField.parse(monthOfYear, field: "month_of_year", max: 12, min: 1)
        specs = [minute, hour, dayOfWeek, dayOfMonth, monthOfYear]
        let longest = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        let days = daysOfMonth
        guard monthsOfYear.contains(where: { month in days.contains { $0 <= longest[month - 1] } }) else {
            throw CrontabError(
                field: "day_of_month",
                message:
                    "Invalid crontab: day_of_month \(CrontabField.quoted(dayOfMonth)) never occurs in month_of_year \(CrontabField.quoted(monthOfYear))."
            )
        }
    }

    /// A crontab from a five-field expression `minute hour day-of-month month day-of-week`
    /// separated by single spaces, as Celery's `crontab.from_string`.
    ///
    ///     let c = try Crontab(expression: "30 2 * * *")
    public init(expression: String) throws(CrontabError) {
        let parts = expression.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5 else {
            throw CrontabError(
                field: "expression", message: "expected 5 fields separated by single spaces, got \(parts.count)")
        }
        try self.init(
            minute: parts[0], hour: parts[1], dayOfWeek: parts[4], dayOfMonth: parts[2], monthOfYear: parts[3])
    }

    /// The run Celery computes after a run at `lastRun` (`last_run_at + remaining_delta(...)`), in `zone`.
    /// Usually after `lastRun`; see the type's notes for the one fall-back case where it is not.
    /// Throws only where Celery raises (`unable to rollover`, or a date past year 9999).
    ///
    ///     let next = try c.nextRun(after: lastRun, in: TimeZone(identifier: "America/New_York")!)
    public func nextRun(after lastRun: Date, in zone: TimeZone) throws(CrontabError) -> Date {
        let clock = ZoneClock(zone)
        let whole = lastRun.timeIntervalSince1970.rounded(.down)
        guard whole.isFinite, abs(whole) < 1e14 else {
            throw CrontabError(field: "expression", message: "instant out of range")
        }
        let fraction = lastRun.timeIntervalSince1970 - whole
        let local = clock.local(instant: Int(whole))
        let dayCount = Int((Double(local) / 86_400).rounded(.down))
        let secondOfDay = local - dayCount * 86_400
        let (year, month, day) = CivilDate.date(dayCount)
        let hour = secondOfDay / 3600
        let minute = secondOfDay % 3600 / 60
        let weekday = CivilDate.weekday(dayCount)

        let thisDate = monthsOfYear.contains(month) && daysOfMonth.contains(day) && daysOfWeek.contains(weekday)
        let maxMinute = minutes.max() ?? 0
        let minMinute = minutes.min() ?? 0
        let maxHour = hours.max() ?? 0
        let minHour = hours.min() ?? 0
        let endDay: Int
        let endHour: Int
        let endMinute: Int
        if thisDate && hours.contains(hour) && minute < maxMinute {
            endDay = dayCount
            endHour = hour
            endMinute = minutes.filter { $0 > minute }.min() ?? minMinute
        } else if thisDate && hour < maxHour {
            endDay = dayCount
            endHour = hours.filter { $0 > hour }.min() ?? minHour
            endMinute = minMinute
        } else if allDaysOfMonthAndMonths {
            let nextDay = daysOfWeek.filter { $0 > weekday }.min() ?? (daysOfWeek.min() ?? 0)
            let addWeek = nextDay == weekday
            let pythonTarget = (nextDay + 6) % 7
            let pythonToday = (weekday + 6) % 7
            endDay = dayCount + (7 - pythonToday + pythonTarget) % 7 + (addWeek ? 7 : 0)
            endHour = minHour
            endMinute = minMinute
        } else {
            endDay = try dayOfNextRun(
                year: year, month: month, day: day, lastLocal: Double(local) + fraction, hour: minHour,
                minute: minMinute, clock: clock)
            endHour = minHour
            endMinute = minMinute
        }
        let (endYear, _, _) = CivilDate.date(endDay)
        guard (1...9999).contains(endYear) else {
            throw CrontabError(field: "expression", message: "date value out of range")
        }
        let endLocal = endDay * 86_400 + endHour * 3600 + endMinute * 60
        return Date(timeIntervalSince1970: TimeInterval(clock.instant(local: endLocal, fold: 0)))
    }

    /// Celery's `_delta_to_next`: the first day (as days since 1970) on or after the
    /// last run's date whose month, day of month and weekday all match, and whose run
    /// time (`hour:minute`, pushed over a DST gap as Celery's `make_aware` does) is not
    /// before the last run.
    private func dayOfNextRun(
        year lastYear: Int, month lastMonth: Int, day lastDay: Int, lastLocal: Double, hour: Int, minute: Int,
        clock: ZoneClock
    ) throws(CrontabError) -> Int {
        let doms = daysOfMonth.sorted()
        let moys = monthsOfYear.sorted()
        var year = lastYear
        var dom: Int
        var moy: Int
        if monthsOfYear.contains(lastMonth) {
            dom = doms.firstIndex { $0 > lastDay } ?? doms.count
            moy = moys.firstIndex { $0 >= lastMonth } ?? moys.count
        } else {
            dom = 0
            moy = moys.firstIndex { $0 > lastMonth } ?? moys.count
            if moy == moys.count { moy = 0 }
        }
        func isBeforeLastRun(_ y: Int, _ m: Int, _ d: Int) -> Bool {
            var local = CivilDate.days(year: y, month: m, day: d) * 86_400 + hour * 3600 + minute * 60
            if let gap = clock.gap(local: local) { local += gap }
            return Double(local) < lastLocal
        }
        func rollOver() throws(CrontabError) {
            for _ in 0..<2000 {
                let flag =
                    dom == doms.count || !CivilDate.isValid(year: year, month: moys[moy], day: doms[dom])
                    || isBeforeLastRun(year, moys[moy], doms[dom])
                guard flag else { return }
                dom = 0
                moy += 1
                if moy == moys.count {
                    moy = 0
                    year += 1
                }
            }
            throw CrontabError(
                field: "expression", message: "unable to rollover, time specification is probably invalid")
        }
        try rollOver()
        for _ in 0..<100_000 {
            let days = CivilDate.days(year: year, month: moys[moy], day: doms[dom])
            if daysOfWeek.contains(CivilDate.weekday(days)) { return days }
            dom += 1
            try rollOver()
        }
        throw CrontabError(field: "expression", message: "unable to rollover, time specification is probably invalid")
    }

    /// Celery's `remaining_estimate(last_run_at)` with `now`: seconds from `now` to the
    /// next run after `lastRun` (negative when that run is already past).
    ///
    ///     let seconds = try c.remaining(lastRun: last, now: Date(), in: zone)
    public func remaining(lastRun: Date, now: Date, in zone: TimeZone) throws(CrontabError) -> TimeInterval {
        try nextRun(after: lastRun, in: zone).timeIntervalSince(now)
    }

    /// Celery's `is_due(last_run_at)` (without `beat_cron_starting_deadline`): due when the
    /// next run after `lastRun` is not after `now`; `next` is the seconds until the run
    /// after that (counted from `now` as the last run when due), never negative.
    ///
    ///     let state = try c.isDue(lastRun: last, now: Date(), in: zone)
    public func isDue(lastRun: Date, now: Date, in zone: TimeZone) throws(CrontabError) -> ScheduleState {
        let rem = try remaining(lastRun: lastRun, now: now, in: zone)
        if rem <= 0 {
            let next = try remaining(lastRun: now, now: now, in: zone)
            return ScheduleState(isDue: true, next: max(next, 0))
        }
        return ScheduleState(isDue: false, next: rem)
    }
}
