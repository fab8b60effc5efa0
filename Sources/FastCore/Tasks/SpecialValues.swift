import Foundation

/// Types the JSON decoders and encoder treat by value rather than by their own `Codable`
/// (whose forms are not Celery's): `JSON` itself, `Date` (kombu's
/// `{"__type__": "datetime", "__value__": "<isoformat>"}`, as Celery 5.7 sends a
/// `datetime`; an ISO string or epoch seconds are read too) and `URL` (a string).
enum SpecialValues {
    /// Whether `type` is one of these.
    static func handles(_ type: Any.Type) -> Bool { type == JSON.self || type == Date.self || type == URL.self }

    static func decode<T>(_ type: T.Type, from value: JSON, codingPath: [any CodingKey]) throws -> T? {
        if T.self == JSON.self { return value as? T }
        if T.self == Date.self { return try date(value, codingPath) as? T }
        if T.self == URL.self {
            let text = try JSONScalars.string(value, codingPath)
            guard let url = URL(string: text) else {
                throw ArgumentValueError(codingPath, .invalid("not a URL: \(PythonRepr.repr(value))"))
            }
            return url as? T
        }
        return nil
    }

    private static func date(_ value: JSON, _ codingPath: [any CodingKey]) throws -> Date {
        var text: String?
        switch value {
        case .int(let i): return Date(timeIntervalSince1970: Double(i))
        case .double(let d) where d.isFinite:
            guard Swift.abs(d) <= CeleryTime.widestEpoch else {
                throw ArgumentValueError(codingPath, .outOfRange(type: "Date", value: "\(d)"))
            }
            return Date(timeIntervalSince1970: d)
        case .string(let s): text = s
        case .object:
            if value["__type__"] == "datetime" { text = value["__value__"]?.stringValue }
        default: break
        }
        guard let text else {
            throw ArgumentValueError(
                codingPath, .mismatch(expected: "datetime", actual: ArgumentValueError.pythonType(value)))
        }
        guard let epoch = CeleryTime.parse(text) else {
            throw ArgumentValueError(codingPath, .invalid("not an ISO 8601 time: \(PythonRepr.repr(.string(text)))"))
        }
        return Date(timeIntervalSince1970: epoch)
    }

    /// The JSON for `value` when its type is one of these, else nil.
    static func encode(_ value: Any) -> JSON? {
        if let json = value as? JSON { return json }
        if let date = value as? Date {
            return ["__type__": "datetime", "__value__": .string(CeleryTime.isoformat(date.timeIntervalSince1970))]
        }
        if let url = value as? URL { return .string(url.absoluteString) }
        return nil
    }

    /// A stand-in value of one of these types (see `PlaceholderDecoder`).
    static func placeholder<T>(_ type: T.Type) -> T? {
        if T.self == JSON.self { return JSON.null as? T }
        if T.self == Date.self { return Date(timeIntervalSince1970: 0) as? T }
        if T.self == URL.self { return URL(string: "about:blank") as? T }
        return nil
    }
}
