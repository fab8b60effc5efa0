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
    /// `2026-11-21T07:30:17.699307+00:00`.
    public static func isoformat(_ epoch: Double) -> String {
        var secs = time_t(epoch.rounded(.down))
        var micros = Int(((epoch - Double(secs)) * 1_000_000).rounded())
        if micros >= 1_000_000 {
            secs += 1
            micros -= 1_000_000
        }
        var tm = Glibc.tm()
        gmtime_r(&secs, &tm)
        func pad(_ v: Int, _ w: Int) -> String {
            let s = String(v)
            return s.count >= w ? s : String(repeating: "0", count: w - s.count) + s
        }
        return "\(pad(Int(tm.tm_year) + 1900, 4))-\(pad(Int(tm.tm_mon) + 1, 2))-\(pad(Int(tm.tm_mday), 2))T"
            + "\(pad(Int(tm.tm_hour), 2)):\(pad(Int(tm.tm_min), 2)):\(pad(Int(tm.tm_sec), 2))."
            + "\(pad(micros, 6))+00:00"
    }
}
