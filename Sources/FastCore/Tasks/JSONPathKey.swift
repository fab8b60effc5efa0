/// A coding key made from a name or an index: the steps of a path into JSON, and the keys
/// of a JSON object read or written without a `CodingKeys` type.
struct JSONPathKey: CodingKey, Sendable, Hashable {
    let stringValue: String
    let intValue: Int?
    init(stringValue: String) {
        self.stringValue = stringValue
        intValue = nil
    }
    init(intValue: Int) {
        stringValue = String(intValue)
        self.intValue = intValue
    }
    init(_ key: any CodingKey) {
        stringValue = key.stringValue
        intValue = key.intValue
    }

    /// `point.x`, `items[2]`: a path as the error messages show it.
    static func render(_ path: [JSONPathKey]) -> String {
        var out = ""
        for key in path {
            if let i = key.intValue {
                out += "[\(i)]"
            } else {
                out += out.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return out
    }
}
