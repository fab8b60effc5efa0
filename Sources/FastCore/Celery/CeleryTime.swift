#if canImport(Glibc)
    import Glibc
#endif

/// Wall-clock helpers in the formats Celery writes.
public enum CeleryTime {
    /// Seconds since the epoch, with microseconds.
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// ISO-8601 in UTC as Python's `datetime.isoformat()` writes it:
    /// `2026-11-21T07:30:17.699307+00:00`. Any `Double` is written (see `widestEpoch`).
    public static func isoformat(_ epoch: Double) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(32)
        writeIsoformat(epoch, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The furthest instant from the epoch that is formatted as itself (about 317 million
    /// years either way, inside what `gmtime_r`'s `int` year holds); times further out,
    /// infinities included, are written as this bound. A NaN time is written as the epoch.
    static let widestEpoch = 1e16

    /// Append `isoformat(epoch)`'s bytes: the calendar date by arithmetic (no `gmtime_r`),
    /// the 32 characters written on the stack and appended in one copy. Any `Double` is
    /// written (a countdown or rate limit can make a due time past `Int`): see `widestEpoch`.
    static func writeIsoformat(_ epoch: Double, to out: inout [UInt8]) {
        let epoch = epoch.isNaN ? 0 : min(max(epoch, -widestEpoch), widestEpoch)
        var secs = Int(epoch.rounded(.down))
        var micros = Int(((epoch - Double(secs)) * 1_000_000).rounded())
        if micros >= 1_000_000 {
            secs += 1
            micros -= 1_000_000
        }
        let days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400
        let clock = secs - days * 86400
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        guard (0...9999).contains(year) else {
            writeIsoformatWide(secs, micros, to: &out)
            return
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { b in
            /// `v` in exactly `width` digits ending just before `end`.
            func put(_ v: Int, _ width: Int, endingAt end: Int) {
                var v = v
                for i in stride(from: end - 1, through: end - width, by: -1) {
                    b[i] = UInt8(48 + v % 10)
                    v /= 10
                }
            }
            put(year, 4, endingAt: 4)
            b[4] = UInt8(ascii: "-")
            put(month, 2, endingAt: 7)
            b[7] = UInt8(ascii: "-")
            put(day, 2, endingAt: 10)
            b[10] = UInt8(ascii: "T")
            put(clock / 3600, 2, endingAt: 13)
            b[13] = UInt8(ascii: ":")
            put(clock / 60 % 60, 2, endingAt: 16)
            b[16] = UInt8(ascii: ":")
            put(clock % 60, 2, endingAt: 19)
            b[19] = UInt8(ascii: ".")
            put(micros, 6, endingAt: 26)
            b[26] = UInt8(ascii: "+")
            b[27] = UInt8(ascii: "0")
            b[28] = UInt8(ascii: "0")
            b[29] = UInt8(ascii: ":")
            b[30] = UInt8(ascii: "0")
            b[31] = UInt8(ascii: "0")
            out.append(contentsOf: UnsafeBufferPointer(b))
        }
    }

    /// Year, month (1–12) and day (1–31) of a day counted from 1970-01-01, proleptic
    /// Gregorian (Howard Hinnant's `civil_from_days`).
    static func civilDate(daysSinceEpoch: Int) -> (year: Int, month: Int, day: Int) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shifted = (5 * dayOfYear + 2) / 153  // months from March
        let day = dayOfYear - (153 * shifted + 2) / 5 + 1
        let month = shifted < 10 ? shifted + 3 : shifted - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Years outside 0–9999, through `gmtime_r` (every digit of the year kept).
    private static func writeIsoformatWide(_ seconds: Int, _ micros: Int, to out: inout [UInt8]) {
        var secs = time_t(seconds)
        var tm = Glibc.tm()
        gmtime_r(&secs, &tm)
        /// `v` in `width` decimal digits, zero-padded (wider values keep every digit).
        func digits(_ v: Int, _ width: Int, then separator: UInt8?) {
            let text = String(v)
            if text.utf8.count < width {
                out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: width - text.utf8.count))
            }
            out.append(utf8: text)
            if let separator { out.append(separator) }
        }
        digits(Int(tm.tm_year) + 1900, 4, then: UInt8(ascii: "-"))
        digits(Int(tm.tm_mon) + 1, 2, then: UInt8(ascii: "-"))
        digits(Int(tm.tm_mday), 2, then: UInt8(ascii: "T"))
        digits(Int(tm.tm_hour), 2, then: UInt8(ascii: ":"))
        digits(Int(tm.tm_min), 2, then: UInt8(ascii: ":"))
        digits(Int(tm.tm_sec), 2, then: UInt8(ascii: "."))
        digits(micros, 6, then: nil)
        out.append(ascii: "+00:00")
    }

    /// Parse Celery's ISO-8601 times (`2026-11-21T07:31:05.219234+00:00`, `Z`,
    /// or no zone meaning UTC) into epoch seconds.
    public static func parse(_ text: String) -> Double? {
        let b = Array(text.utf8)
        func num(_ from: Int, _ len: Int) -> Int? {
            guard from + len <= b.count else { return nil }
            var v = 0
            for c in b[from..<(from + len)] {
                guard c >= 0x30, c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            return v
        }
        guard let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2),
            let s = num(17, 2), b.count >= 19
        else { return nil }
        var i = 19
        var frac = 0.0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var scale = 0.1
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                frac += Double(b[i] - 0x30) * scale
                scale /= 10
                i += 1
            }
        }
        var offset = 0
        if i < b.count {
            if b[i] == UInt8(ascii: "Z") {
                i += 1
            } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
                guard let oh = num(i + 1, 2), let om = num(i + 4, 2) else { return nil }
                offset = (oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "+") ? 1 : -1)
            } else {
                return nil
            }
        }
        var tm = Glibc.tm()
        tm.tm_year = Int32(y - 1900)
        tm.tm_mon = Int32(mo - 1)
        tm.tm_mday = Int32(d)
        tm.tm_hour = Int32(h)
        tm.tm_min = Int32(mi)
        tm.tm_sec = Int32(s)
        return Double(timegm(&tm) - offset) + frac
    }
}
