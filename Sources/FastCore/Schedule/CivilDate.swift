/// Proleptic Gregorian date arithmetic on whole days since 1970-01-01 (as Python's
/// `datetime` does), independent of Foundation's calendar: used by `Crontab` to
/// step through wall-clock dates.
///
///     let days = CivilDate.days(year: 2028, month: 2, day: 29)
///     CivilDate.weekday(days)  // 2 (Tuesday; Sunday = 0 as in Celery)
public enum CivilDate {
    /// Days since 1970-01-01 of the given date (month 1...12, day 1...31, not checked).
    ///
    ///     CivilDate.days(year: 1970, month: 1, day: 2)  // 1
    public static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    /// The (year, month, day) of a day count since 1970-01-01.
    ///
    ///     CivilDate.date(0)  // (1970, 1, 1)
    public static func date(_ days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Day of the week of a day count, Sunday = 0 ... Saturday = 6 (Celery's numbering).
    ///
    ///     CivilDate.weekday(0)  // 4 (1970-01-01 was a Thursday)
    public static func weekday(_ days: Int) -> Int {
        ((days % 7) + 7 + 4) % 7
    }

    /// Whether the date exists in the proleptic Gregorian calendar within Python's years 1...9999.
    ///
    ///     CivilDate.isValid(year: 2027, month: 2, day: 29)  // false
    public static func isValid(year: Int, month: Int, day: Int) -> Bool {
        guard (1...9999).contains(year), (1...12).contains(month), day >= 1 else { return false }
        return day <= daysInMonth(year: year, month: month)
    }

    /// Number of days in a month of a year.
    ///
    ///     CivilDate.daysInMonth(year: 2028, month: 2)  // 29
    public static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}
