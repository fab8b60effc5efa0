import Foundation

/// Python's `repr` for JSON values, used in `argsrepr`/`kwargsrepr`.
public enum PythonRepr {
    /// Celery's `Task.resultrepr_maxsize`: the most characters (code points) of a
    /// value's repr that a log line or a task event carries.
    public static let resultMaxLength = 1024
    /// Celery's `AMQP.argsrepr_maxsize`: the budget of a message's `argsrepr` header.
    public static let argsMaxLength = 1024
    /// Celery's `AMQP.kwargsrepr_maxsize`: the budget of a message's `kwargsrepr` header.
    public static let kwargsMaxLength = 1024
    /// Celery's `task_repr_maxlevels` default: containers nested deeper show as `[...]`/`{...}`.
    public static let maxLevels = 3

    /// The positional arguments as Celery 5.7 writes `argsrepr`:
    /// `saferepr(tuple(args), limit, maxlevels)` (see `saferepr(_:limit:maxLevels:)`).
    ///
    ///     PythonRepr.saferepr(args: [2, 3])  // "(2, 3)"
    public static func saferepr(args: [JSON], limit: Int = argsMaxLength, maxLevels: Int = maxLevels) -> String {
        var out = ""
        var budget = limit
        _ = safeContainer(
            open: "(", close: args.count == 1 ? ",)" : ")", count: args.count, level: 0, maxLevels: maxLevels,
            out: &out, budget: &budget
        ) { i, out, budget in safeValue(args[i], level: 1, maxLevels: maxLevels, out: &out, budget: &budget) }
        return out
    }

    /// The keyword arguments as Celery 5.7 writes `kwargsrepr`: `saferepr(kwargs, limit, maxlevels)`.
    ///
    ///     PythonRepr.saferepr(kwargs: [("y", 3)])  // "{'y': 3}"
    public static func saferepr(
        kwargs: [(key: String, value: JSON)], limit: Int = kwargsMaxLength, maxLevels: Int = maxLevels
    ) -> String {
        var out = ""
        var budget = limit
        _ = safeValue(.object(kwargs), level: 0, maxLevels: maxLevels, out: &out, budget: &budget)
        return out
    }

    /// Celery's `saferepr(v, limit, maxlevels)` (celery/utils/saferepr.py, 5.7) for a JSON
    /// value, token for token: each string or number is cut to what is left of the budget
    /// (`truncate`: at its last space, then `...`), a string is quoted with only `'`
    /// escaped, containers nested `maxLevels` deep show as `[...]`/`{...}`; once the budget
    /// is spent, a container's last closing bracket still shows, anything else becomes
    /// `, ...` followed by the brackets still open. So the text is about `limit` code points
    /// (a little over: the cut piece's `...`, quotes and brackets), and building it costs
    /// about that much whatever the value's size.
    ///
    ///     PythonRepr.saferepr(.array([.string(String(repeating: "x", count: 100_000))]), limit: 1024)
    ///     // "['xxx…x...']" (1023 x)
    public static func saferepr(_ v: JSON, limit: Int, maxLevels: Int = maxLevels) -> String {
        var out = ""
        var budget = limit
        _ = safeValue(v, level: 0, maxLevels: maxLevels, out: &out, budget: &budget)
        return out
    }

    /// One non-closing token: false (and `, ...` written) when the budget is already spent.
    private static func safeToken(_ out: inout String, _ budget: inout Int, _ make: (Int) -> String) -> Bool {
        guard budget > 0 else {
            out += ", ..."
            return false
        }
        let text = make(budget)
        out += text
        budget -= text.unicodeScalars.count
        return true
    }

    /// One value; false when the budget ran out inside it (its open brackets already closed).
    private static func safeValue(
        _ v: JSON, level: Int, maxLevels: Int, out: inout String, budget: inout Int
    ) -> Bool {
        switch v {
        case .array(let items):
            return safeContainer(
                open: "[", close: "]", count: items.count, level: level, maxLevels: maxLevels, out: &out,
                budget: &budget
            ) { i, out, budget in
                safeValue(items[i], level: level + 1, maxLevels: maxLevels, out: &out, budget: &budget)
            }
        case .object(let pairs):
            return safeContainer(
                open: "{", close: "}", count: pairs.count, level: level, maxLevels: maxLevels, out: &out,
                budget: &budget
            ) { i, out, budget in
                safeToken(&out, &budget) { quoted(pairs[i].key, max: $0) }
                    && safeToken(&out, &budget) { _ in ": " }
                    && safeValue(pairs[i].value, level: level + 1, maxLevels: maxLevels, out: &out, budget: &budget)
            }
        case .string(let s):
            return safeToken(&out, &budget) { quoted(s, max: $0) }
        default:
            return safeToken(&out, &budget) { truncate(repr(v), max: $0) }
        }
    }

    /// `open`, the `count` elements (each written by `element`) separated by `, `, `close`.
    private static func safeContainer(
        open: String, close: String, count: Int, level: Int, maxLevels: Int, out: inout String, budget: inout Int,
        element: (Int, inout String, inout Int) -> Bool
    ) -> Bool {
        if maxLevels > 0, level >= maxLevels {
            return safeToken(&out, &budget) { _ in open + "..." + close }
        }
        // A container whose opening is refused is not shown at all (nor its closing).
        guard safeToken(&out, &budget, { _ in open }) else { return false }
        for i in 0..<count {
            guard element(i, &out, &budget), i == count - 1 || safeToken(&out, &budget, { _ in ", " }) else {
                out += close
                return false
            }
        }
        // A closing bracket always shows, spent budget or not.
        out += close
        budget -= close.unicodeScalars.count
        return true
    }

    /// Celery's `_format_chars`: `s` truncated to `max`, with `'` escaped, in single quotes.
    private static func quoted(_ s: String, max: Int) -> String {
        let cut = truncate(s, max: max)
        guard cut.utf8.contains(0x27) else { return "'" + cut + "'" }
        return "'" + cut.replacingOccurrences(of: "'", with: "\\'") + "'"
    }

    /// Celery's `truncate(s, maxlen)`: a text of `max` code points or more is cut to its
    /// first `max`, then back to before its last space, and ends in `...`.
    private static func truncate(_ s: String, max: Int) -> String {
        guard max > 0, s.utf8.count >= max else { return s }  // fewer bytes than max: fewer code points too
        var head = String.UnicodeScalarView()
        var taken = 0
        for u in s.unicodeScalars {
            guard taken < max else { break }
            head.append(u)
            taken += 1
        }
        guard taken >= max else { return s }
        if let space = head.lastIndex(of: " ") { head = String.UnicodeScalarView(head[..<space]) }
        return String(head) + "..."
    }

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
