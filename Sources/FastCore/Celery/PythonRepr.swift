import Foundation

/// Python's `repr` for JSON values, used in `argsrepr`/`kwargsrepr`.
public enum PythonRepr {
    /// Celery's `Task.resultrepr_maxsize`: the most characters (code points) of a
    /// value's repr that a log line or a task event carries.
    public static let resultMaxLength = 1024

    public static func repr(_ v: JSON) -> String {
        switch v {
        case .null: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return "\(d)"
        case .string(let s):
            guard s.utf8.contains(where: { $0 == 0x27 || $0 == 0x5C }) else { return "'" + s + "'" }
            return "'" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
        case .array(let a): return "[" + a.map(repr).joined(separator: ", ") + "]"
        case .object(let o): return "{" + o.map { "'\($0.key)': \(repr($0.value))" }.joined(separator: ", ") + "}"
        }
    }

    /// `repr(v)` cut as Celery's `saferepr(v, maxlen)` cuts it: at most `limit` code
    /// points, a longer one ending in `...`. Only what is shown is built, so a large
    /// value costs no more than a small one.
    ///
    ///     logger.info("succeeded: \(PythonRepr.repr(result, limit: PythonRepr.resultMaxLength))")
    public static func repr(_ v: JSON, limit: Int) -> String {
        let limit = max(limit, 3)
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(min(limit + 1, 4096))
        write(v, to: &out, cap: limit + 1)
        return cut(out, limit: limit)
    }

    /// `text` cut to at most `limit` code points, a longer one ending in `...`.
    public static func truncated(_ text: String, limit: Int = resultMaxLength) -> String {
        let limit = max(limit, 3)
        guard text.utf8.count > limit else { return text }  // fewer bytes than the limit: fewer code points too
        var out: [Unicode.Scalar] = []
        append(text, to: &out, cap: limit + 1)
        return cut(out, limit: limit)
    }

    private static func cut(_ out: [Unicode.Scalar], limit: Int) -> String {
        var text = String.UnicodeScalarView()
        if out.count <= limit {
            text.append(contentsOf: out)
            return String(text)
        }
        text.append(contentsOf: out.prefix(limit - 3))
        return String(text) + "..."
    }

    /// Append `s`'s code points until `out` holds `cap`.
    private static func append(_ s: String, to out: inout [Unicode.Scalar], cap: Int) {
        for u in s.unicodeScalars {
            guard out.count < cap else { return }
            out.append(u)
        }
    }

    /// `repr(v)`'s code points until `out` holds `cap`.
    private static func write(_ v: JSON, to out: inout [Unicode.Scalar], cap: Int) {
        guard out.count < cap else { return }
        switch v {
        case .string(let s):
            // Only the part that can show is quoted (escapes only lengthen it).
            let shown = String(String.UnicodeScalarView(s.unicodeScalars.prefix(cap - out.count)))
            append(repr(.string(shown)), to: &out, cap: cap)
        case .array(let items):
            append("[", to: &out, cap: cap)
            for (i, item) in items.enumerated() {
                guard out.count < cap else { return }
                if i > 0 { append(", ", to: &out, cap: cap) }
                write(item, to: &out, cap: cap)
            }
            append("]", to: &out, cap: cap)
        case .object(let pairs):
            append("{", to: &out, cap: cap)
            for (i, pair) in pairs.enumerated() {
                guard out.count < cap else { return }
                if i > 0 { append(", ", to: &out, cap: cap) }
                write(.string(pair.key), to: &out, cap: cap)
                append(": ", to: &out, cap: cap)
                write(pair.value, to: &out, cap: cap)
            }
            append("}", to: &out, cap: cap)
        default:
            append(repr(v), to: &out, cap: cap)
        }
    }
}
