/// Celery 5.7's `crontab_parser` for one crontab field: expands a spec such as
/// `"*/15"`, `"1,13,30-45,50-59/2"` or `"mon-fri"` into the set of values it
/// stands for, accepting and refusing what Celery does (with the ASCII subset of
/// Python's `\w` and `int()`; a spec with non-ASCII characters is refused).
///
/// Celery's grammar, followed exactly: parts separated by `,` (an empty part is an
/// error); each part is tried as `a-b/n`, `a-b`, `*/n`, `*`, else a single number,
/// matched from its start (text after a match is ignored, as in Celery: `"1-2-3"` is `1-2`).
/// A number is a Python integer, else a month name, else a day name (`"jan"`..`"dec"`,
/// `"sun"`..`"sat"`, first three letters, any case), in every field: `"mar"` as a day of
/// the week is 3 (Wednesday) because Celery tries month names first. A range `a-b`
/// with `b < a` wraps around (`"fri-mon"` is 5, 6, 0, 1). A step `n` takes every
/// n-th value of the expanded list (`[::n]`); step 0 is an error.
///
///     let minutes = try CrontabField.parse("*/15", field: "minute", max: 60, min: 0)  // [0, 15, 30, 45]
public enum CrontabField {
    private static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
    private static let monthNames = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]

    /// The values `spec` stands for, each in `min...(min + max - 1)`.
    ///
    ///     try CrontabField.parse("2-12/2", field: "month_of_year", max: 12, min: 1)  // [2, 4, 6, 8, 10, 12]
    public static func parse(_ spec: String, field: String, max: Int, min: Int) throws(CrontabError) -> Set<Int> {
        guard spec.unicodeScalars.allSatisfy({ $0.isASCII }) else {
            throw CrontabError(field: field, message: "non-ASCII characters in \(quoted(spec))")
        }
        let parser = Parser(field: field, max: max, min: min)
        var acc = Set<Int>()
        for part in spec.split(separator: ",", omittingEmptySubsequences: false) {
            guard !part.isEmpty else { throw CrontabError(field: field, message: "empty part") }
            acc.formUnion(try parser.parsePart(Array(part.utf8)))
        }
        return acc
    }

    static func quoted(_ s: String) -> String { "'" + s + "'" }

    private struct Parser {
        let field: String
        let max: Int
        let min: Int

        func fail(_ message: String) -> CrontabError { CrontabError(field: field, message: message) }

        static func isWord(_ c: UInt8) -> Bool {
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F
        }

        /// Length of the run of `\w` characters starting at `i`.
        static func wordRun(_ p: [UInt8], _ i: Int) -> Int {
            var j = i
            while j < p.count && isWord(p[j]) { j += 1 }
            return j - i
        }

        func parsePart(_ p: [UInt8]) throws(CrontabError) -> [Int] {
            let star: UInt8 = 0x2A
            let dash: UInt8 = 0x2D
            let slash: UInt8 = 0x2F
            // (\w+?)-(\w+)(/(\w+)?)?
            let a = Self.wordRun(p, 0)
            if a > 0, a < p.count, p[a] == dash {
                let bStart = a + 1
                let b = Self.wordRun(p, bStart)
                if b > 0 {
                    let from = Array(p[0..<a])
                    let to = Array(p[bStart..<(bStart + b)])
                    let after = bStart + b
                    if after < p.count, p[after] == slash {
                        let c = Self.wordRun(p, after + 1)
                        guard c > 0 else { throw fail("empty filter") }
                        let step = try stepValue(Array(p[(after + 1)..<(after + 1 + c)]))
                        return strided(try expandRange(from, to), step)
                    }
                    return try expandRange(from, to)
                }
            }
            // \*/(\w+)?
            if p.count >= 2, p[0] == star, p[1] == slash {
                let c = Self.wordRun(p, 2)
                guard c > 0 else { throw fail("empty filter") }
                let step = try stepValue(Array(p[2..<(2 + c)]))
                return strided(Array(min..<(min + max)), step)
            }
            if p == [star] { return Array(min..<(min + max)) }
            return [try expandNumber(p)]
        }

        func strided(_ values: [Int], _ step: Int) -> [Int] {
            stride(from: 0, to: values.count, by: step).map { values[$0] }
        }

        func stepValue(_ s: [UInt8]) throws(CrontabError) -> Int {
            guard let n = PythonInt.parse(s) else {
                throw fail("invalid literal for int() with base 10: \(quoted(String(decoding: s, as: UTF8.self)))")
            }
            guard n != 0 else { throw fail("slice step cannot be zero") }
            return n
        }

        func expandRange(_ a: [UInt8], _ b: [UInt8]) throws(CrontabError) -> [Int] {
            let from = try expandNumber(a)
            let to = try expandNumber(b)
            if to < from { return Array(from..<(min + max)) + Array(min...to) }
            return Array(from...to)
        }

        func expandNumber(_ s: [UInt8]) throws(CrontabError) -> Int {
            let text = String(decoding: s, as: UTF8.self)
            if s.first == 0x2D { throw fail("negative numbers not supported") }
            let value: Int
            if let n = PythonInt.parse(s) {
                value = n
            } else {
                let abbreviation = String(text.prefix(3)).lowercased()
                if let m = monthNames.firstIndex(of: abbreviation) {
                    value = m + 1
                } else if let d = dayNames.firstIndex(of: abbreviation) {
                    value = d
                } else {
                    throw fail("Invalid weekday literal \(quoted(text)).")
                }
            }
            let maxValue = min + max - 1
            if value > maxValue { throw fail("Invalid end range: \(value) > \(maxValue).") }
            if value < min { throw fail("Invalid beginning range: \(value) < \(min).") }
            return value
        }
    }
}
