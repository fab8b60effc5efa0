/// Python's `int(text)` (base 10) on ASCII text: surrounding whitespace, an optional
/// sign, digits with single underscores between them. Values beyond `Int` saturate
/// to `Int.max` / `Int.min` (every caller treats them as out of range or as a step
/// past the end, as Celery's unbounded integers would be).
///
///     PythonInt.parse(Array(" 1_0 ".utf8))  // 10
public enum PythonInt {
    /// The integer `text` spells, or nil where Python's `int()` raises `ValueError`.
    ///
    ///     PythonInt.parse(Array("x".utf8))  // nil
    public static func parse(_ text: [UInt8]) -> Int? {
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F) }
        var lo = 0
        var hi = text.count
        while lo < hi && isSpace(text[lo]) { lo += 1 }
        while hi > lo && isSpace(text[hi - 1]) { hi -= 1 }
        var negative = false
        if lo < hi && (text[lo] == 0x2B || text[lo] == 0x2D) {
            negative = text[lo] == 0x2D
            lo += 1
        }
        guard lo < hi else { return nil }
        var value = 0
        var saturated = false
        var previousWasDigit = false
        for i in lo..<hi {
            let c = text[i]
            if c == 0x5F {
                guard previousWasDigit else { return nil }
                previousWasDigit = false
                continue
            }
            guard c >= 0x30 && c <= 0x39 else { return nil }
            previousWasDigit = true
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(Int(c - 0x30))
            if o1 || o2 { saturated = true } else { value = s }
        }
        guard previousWasDigit else { return nil }
        if saturated { return negative ? Int.min : Int.max }
        return negative ? -value : value
    }
}
