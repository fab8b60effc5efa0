/// Why a JSON value did not decode into a Swift value: the decoders' own error, turned into
/// a Python-style `TaskFailure` for a task's arguments (`TypedArguments`) or into a
/// `DecodingError` for a result (`TypedResult`).
struct ArgumentValueError: Error, Sendable {
    enum Kind: Sendable {
        /// `expected` and `actual` are Python type names (`int`, `str`, `None`…).
        case mismatch(expected: String, actual: String)
        /// A number that does not fit the Swift type.
        case outOfRange(type: String, value: String)
        /// An object without a key the type needs.
        case missingKey(String)
        /// A list with fewer items than the type reads.
        case tooFewItems
        /// Anything a type's own `init(from:)` rejected.
        case invalid(String)
    }
    var path: [JSONPathKey]
    var kind: Kind

    init(_ path: [any CodingKey], _ kind: Kind) {
        self.path = path.map(JSONPathKey.init)
        self.kind = kind
    }

    /// What a value of `json` is called in Python.
    static func pythonType(_ json: JSON) -> String {
        switch json {
        case .null: return "None"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .array: return "list"
        case .object: return "dict"
        }
    }

    /// The same failure as Swift's `DecodingError`.
    var decodingError: DecodingError {
        let context = DecodingError.Context(codingPath: path, debugDescription: text)
        switch kind {
        case .mismatch, .outOfRange: return .typeMismatch(Any.self, context)
        case .missingKey(let key): return .keyNotFound(JSONPathKey(stringValue: key), context)
        case .tooFewItems: return .valueNotFound(Any.self, context)
        case .invalid: return .dataCorrupted(context)
        }
    }

    /// The failure without the path: `must be int, not str`.
    var text: String {
        switch kind {
        case .mismatch(let expected, let actual): return "must be \(expected), not \(actual)"
        case .outOfRange(let type, let value): return "\(value) is out of range for \(type)"
        case .missingKey(let key): return "has no key '\(key)'"
        case .tooFewItems: return "has too few items"
        case .invalid(let why): return "is invalid: \(why)"
        }
    }

    /// The Python exception type the failure is reported as.
    var pythonException: String {
        switch kind {
        case .outOfRange, .invalid: return "ValueError"
        default: return "TypeError"
        }
    }
}
