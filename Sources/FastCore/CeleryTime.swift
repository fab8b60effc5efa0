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
        var out: [UInt8] = []
        out.reserveCapacity(32)
        writeIsoformat(epoch, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Append `isoformat(epoch)`'s bytes.
    static func writeIsoformat(_ epoch: Double, to out: inout [UInt8]) {
        var secs = time_t(epoch.rounded(.down))
        var micros = Int(((epoch - Double(secs)) * 1_000_000).rounded())
        if micros >= 1_000_000 {
            secs += 1
            micros -= 1_000_000
        }
        var tm = Glibc.tm()
        gmtime_r(&secs, &tm)
        /// `v` in `width` decimal digits, zero-padded (wider values keep every digit).
        func digits(_ v: Int, _ width: Int, then separator: UInt8?) {
            var count = 1
            var power = 10
            while power <= v {
                count += 1
                power &*= 10
            }
            if count < width { out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: width - count)) }
            var rest = v
            power /= 10
            while power > 0 {
                out.append(UInt8(48 + rest / power))
                rest %= power
                power /= 10
            }
            if let separator { out.append(separator) }
        }
        digits(Int(tm.tm_year) + 1900, 4, then: UInt8(ascii: "-"))
        digits(Int(tm.tm_mon) + 1, 2, then: UInt8(ascii: "-"))
        digits(Int(tm.tm_mday), 2, then: UInt8(ascii: "T"))
        digits(Int(tm.tm_hour), 2, then: UInt8(ascii: ":"))
        digits(Int(tm.tm_min), 2, then: UInt8(ascii: ":"))
        digits(Int(tm.tm_sec), 2, then: UInt8(ascii: "."))
        digits(micros, 6, then: nil)
        out.append(contentsOf: "+00:00".utf8)
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
