import Foundation
import Logging
import Synchronization

/// Python's `str(exc)` for a stored `{"exc_type", "exc_message", "exc_module"}`.
public enum TaskFailureText {
    public static func text(_ result: JSON, type: String? = nil) -> String {
        guard let args = result["exc_message"] else { return result.stringValue ?? result.serialized() }
        let type = type ?? result["exc_type"]?.stringValue ?? "Exception"
        let list = args.arrayValue ?? [args]
        guard list.count == 1 else { return "(" + list.map(PythonRepr.repr).joined(separator: ", ") + ")" }
        guard let s = list[0].stringValue else { return PythonRepr.repr(list[0]) }
        return type == "NotRegistered" || type == "KeyError" ? "'\(s)'" : s
    }
}
