/// `JSON` is `Codable`: a task's arguments or output may be, or contain, untyped JSON.
/// Through Celeris' own coders it is taken and written as it is (key order, integers kept);
/// through any other coder (Foundation's `JSONEncoder`, say) it is written as the value it holds.
///
///     struct Job: Codable { var name: String; var payload: JSON }
extension JSON: Codable {
    public init(from decoder: any Decoder) throws {
        if let source = decoder as? any JSONValueSource {
            self = try source.jsonValue()
            return
        }
        if let c = try? decoder.singleValueContainer() {
            if c.decodeNil() {
                self = .null
                return
            }
            if let b = try? c.decode(Bool.self) {
                self = .bool(b)
                return
            }
            if let i = try? c.decode(Int64.self) {
                self = .int(i)
                return
            }
            if let d = try? c.decode(Double.self) {
                self = .double(d)
                return
            }
            if let s = try? c.decode(String.self) {
                self = .string(s)
                return
            }
        }
        if var c = try? decoder.unkeyedContainer() {
            var items: [JSON] = []
            while !c.isAtEnd { items.append(try c.decode(JSON.self)) }
            self = .array(items)
            return
        }
        let c = try decoder.container(keyedBy: JSONPathKey.self)
        self = .object(try c.allKeys.map { (key: $0.stringValue, value: try c.decode(JSON.self, forKey: $0)) })
    }

    public func encode(to encoder: any Encoder) throws {
        if let sink = encoder as? JSONValueEncoder {
            sink.store(self)
            return
        }
        switch self {
        case .null:
            var c = encoder.singleValueContainer()
            try c.encodeNil()
        case .bool(let b):
            var c = encoder.singleValueContainer()
            try c.encode(b)
        case .int(let i):
            var c = encoder.singleValueContainer()
            try c.encode(i)
        case .double(let d):
            var c = encoder.singleValueContainer()
            try c.encode(d)
        case .string(let s):
            var c = encoder.singleValueContainer()
            try c.encode(s)
        case .array(let items):
            var c = encoder.unkeyedContainer()
            for item in items { try c.encode(item) }
        case .object(let pairs):
            var c = encoder.container(keyedBy: JSONPathKey.self)
            for (key, value) in pairs { try c.encode(value, forKey: JSONPathKey(stringValue: key)) }
        }
    }
}
