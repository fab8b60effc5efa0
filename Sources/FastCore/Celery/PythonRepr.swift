import Foundation

/// Python's `repr` for JSON values, used in `argsrepr`/`kwargsrepr`.
public enum PythonRepr {
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
}
