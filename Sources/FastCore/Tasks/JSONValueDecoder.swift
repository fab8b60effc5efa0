/// Decodes a `Decodable` from a `JSON` value directly (no text in between): integers stay
/// exact, an integer is accepted where a `Double` is wanted, a float, a bool or a number out
/// of range is not accepted where an integer is wanted. Failures are `ArgumentValueError`s.
///
///     let p = try JSONValueDecoder.decode(Point.self, from: ["x": 1, "y": 2])
struct JSONValueDecoder: Decoder, JSONValueSource {
    let value: JSON
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(_ value: JSON, codingPath: [any CodingKey] = []) {
        self.value = value
        self.codingPath = codingPath
    }

    static func decode<T: Decodable>(_ type: T.Type, from value: JSON, codingPath: [any CodingKey] = []) throws -> T {
        if let special = try SpecialValues.decode(type, from: value, codingPath: codingPath) { return special }
        return try T(from: JSONValueDecoder(value, codingPath: codingPath))
    }

    func jsonValue() throws -> JSON { value }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let pairs) = value else {
            throw ArgumentValueError(
                codingPath, .mismatch(expected: "dict", actual: ArgumentValueError.pythonType(value)))
        }
        return KeyedDecodingContainer(JSONKeyedDecoding<Key>(pairs: pairs, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = value else {
            throw ArgumentValueError(
                codingPath, .mismatch(expected: "list", actual: ArgumentValueError.pythonType(value)))
        }
        return JSONUnkeyedDecoding(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        JSONSingleValueDecoding(value: value, codingPath: codingPath)
    }
}

/// A decoder that can hand over the JSON value it reads, so `JSON`'s own `init(from:)`
/// takes it as it is.
protocol JSONValueSource {
    func jsonValue() throws -> JSON
}

/// Scalars out of JSON values, with Python's type names in the errors.
enum JSONScalars {
    static func mismatch(_ expected: String, _ value: JSON, _ path: [any CodingKey]) -> ArgumentValueError {
        ArgumentValueError(path, .mismatch(expected: expected, actual: ArgumentValueError.pythonType(value)))
    }

    static func bool(_ value: JSON, _ path: [any CodingKey]) throws -> Bool {
        guard case .bool(let b) = value else { throw mismatch("bool", value, path) }
        return b
    }

    static func string(_ value: JSON, _ path: [any CodingKey]) throws -> String {
        guard case .string(let s) = value else { throw mismatch("str", value, path) }
        return s
    }

    static func double(_ value: JSON, _ path: [any CodingKey]) throws -> Double {
        switch value {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: throw mismatch("float", value, path)
        }
    }

    static func float(_ value: JSON, _ path: [any CodingKey]) throws -> Float {
        let d = try double(value, path)
        let f = Float(d)
        if d.isFinite && !f.isFinite { throw ArgumentValueError(path, .outOfRange(type: "Float", value: "\(d)")) }
        return f
    }

    /// An integer of type `T`. A float is a TypeError even when whole (`3.0`), except one
    /// beyond Int64 (a Python int too large for the JSON reader's integers): that is out of range.
    static func integer<T: FixedWidthInteger>(_ type: T.Type, _ value: JSON, _ path: [any CodingKey]) throws -> T {
        switch value {
        case .int(let i):
            guard let v = T(exactly: i) else {
                throw ArgumentValueError(path, .outOfRange(type: "\(T.self)", value: String(i)))
            }
            return v
        case .double(let d) where d.isFinite && d.rounded() == d && Swift.abs(d) >= 9.2e18:
            throw ArgumentValueError(path, .outOfRange(type: "\(T.self)", value: "\(d)"))
        default:
            throw mismatch("int", value, path)
        }
    }
}

/// A JSON object's keys and values.
struct JSONKeyedDecoding<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let pairs: [(key: String, value: JSON)]
    let codingPath: [any CodingKey]
    /// Key → index of its last occurrence (as Python's `json.loads` keeps the last), for large objects.
    private let index: [String: Int]?

    init(pairs: [(key: String, value: JSON)], codingPath: [any CodingKey]) {
        self.pairs = pairs
        self.codingPath = codingPath
        if pairs.count > 16 {
            var index: [String: Int] = [:]
            for (i, pair) in pairs.enumerated() { index[pair.key] = i }
            self.index = index
        } else {
            index = nil
        }
    }

    var allKeys: [Key] {
        var seen = Set<String>()
        return pairs.compactMap { seen.insert($0.key).inserted ? Key(stringValue: $0.key) : nil }
    }

    private func find(_ key: Key) -> JSON? {
        if let index { return index[key.stringValue].map { pairs[$0].value } }
        return pairs.last(where: { $0.key == key.stringValue })?.value
    }

    private func require(_ key: Key) throws -> JSON {
        guard let v = find(key) else { throw ArgumentValueError(codingPath, .missingKey(key.stringValue)) }
        return v
    }

    func contains(_ key: Key) -> Bool { find(key) != nil }
    func decodeNil(forKey key: Key) throws -> Bool { try require(key).isNull }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool {
        try JSONScalars.bool(try require(key), codingPath + [key])
    }
    func decode(_ type: String.Type, forKey key: Key) throws -> String {
        try JSONScalars.string(try require(key), codingPath + [key])
    }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double {
        try JSONScalars.double(try require(key), codingPath + [key])
    }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float {
        try JSONScalars.float(try require(key), codingPath + [key])
    }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int {
        try JSONScalars.integer(type, try require(key), codingPath + [key])
    }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 {
        try JSONScalars.integer(type, try require(key), codingPath + [key])
    }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 {
        try JSONScalars.integer(type, try require(key), codingPath + [key])
    }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 {
        try JSONScalars.integer(type, try require(key), codingPath + [key])
    }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 {
        try JSONScalars.integer(type, try require(key), codingPath + [key])
    }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt {
        try JSONScalars.integer(type, try require(key), codingPath + [key])
    }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 {
        try JSONScalars.integer(type, try require(key), codingPath + [key])
    }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 {
        try JSONScalars.integer(type, try require(key), codingPath + [key])
    }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 {
        try JSONScalars.integer(type, try require(key), codingPath + [key])
    }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 {
        try JSONScalars.integer(type, try require(key), codingPath + [key])
    }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try JSONValueDecoder.decode(type, from: try require(key), codingPath: codingPath + [key])
    }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let v = find(key), !v.isNull else { return nil }
        return try JSONValueDecoder.decode(type, from: v, codingPath: codingPath + [key])
    }
    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type, forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try JSONValueDecoder(try require(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try JSONValueDecoder(try require(key), codingPath: codingPath + [key]).unkeyedContainer()
    }
    func superDecoder() throws -> any Decoder {
        let value = pairs.last(where: { $0.key == "super" })?.value ?? .null
        return JSONValueDecoder(value, codingPath: codingPath + [JSONPathKey(stringValue: "super")])
    }
    func superDecoder(forKey key: Key) throws -> any Decoder {
        JSONValueDecoder(find(key) ?? .null, codingPath: codingPath + [key])
    }
}

/// A JSON array's items, in order.
struct JSONUnkeyedDecoding: UnkeyedDecodingContainer {
    let items: [JSON]
    let codingPath: [any CodingKey]
    private(set) var currentIndex = 0

    init(items: [JSON], codingPath: [any CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    /// The next item and its path; the index moves past it only once it decoded.
    private func peek() throws -> (JSON, [any CodingKey]) {
        guard currentIndex < items.count else { throw ArgumentValueError(codingPath, .tooFewItems) }
        return (items[currentIndex], codingPath + [JSONPathKey(intValue: currentIndex)])
    }

    private mutating func next<T>(_ read: (JSON, [any CodingKey]) throws -> T) throws -> T {
        let (v, path) = try peek()
        let out = try read(v, path)
        currentIndex += 1
        return out
    }

    mutating func decodeNil() throws -> Bool {
        let (v, _) = try peek()
        if v.isNull { currentIndex += 1 }
        return v.isNull
    }
    mutating func decode(_ type: Bool.Type) throws -> Bool { try next(JSONScalars.bool) }
    mutating func decode(_ type: String.Type) throws -> String { try next(JSONScalars.string) }
    mutating func decode(_ type: Double.Type) throws -> Double { try next(JSONScalars.double) }
    mutating func decode(_ type: Float.Type) throws -> Float { try next(JSONScalars.float) }
    mutating func decode(_ type: Int.Type) throws -> Int { try next { try JSONScalars.integer(type, $0, $1) } }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next { try JSONScalars.integer(type, $0, $1) } }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next { try JSONScalars.integer(type, $0, $1) } }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next { try JSONScalars.integer(type, $0, $1) } }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next { try JSONScalars.integer(type, $0, $1) } }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next { try JSONScalars.integer(type, $0, $1) } }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next { try JSONScalars.integer(type, $0, $1) } }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next { try JSONScalars.integer(type, $0, $1) } }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next { try JSONScalars.integer(type, $0, $1) } }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next { try JSONScalars.integer(type, $0, $1) } }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try next { try JSONValueDecoder.decode(type, from: $0, codingPath: $1) }
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<
        NestedKey
    > {
        try next { try JSONValueDecoder($0, codingPath: $1).container(keyedBy: type) }
    }
    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try next { try JSONValueDecoder($0, codingPath: $1).unkeyedContainer() }
    }
    mutating func superDecoder() throws -> any Decoder {
        try next { JSONValueDecoder($0, codingPath: $1) }
    }
}

/// One JSON value.
struct JSONSingleValueDecoding: SingleValueDecodingContainer {
    let value: JSON
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool { value.isNull }
    func decode(_ type: Bool.Type) throws -> Bool { try JSONScalars.bool(value, codingPath) }
    func decode(_ type: String.Type) throws -> String { try JSONScalars.string(value, codingPath) }
    func decode(_ type: Double.Type) throws -> Double { try JSONScalars.double(value, codingPath) }
    func decode(_ type: Float.Type) throws -> Float { try JSONScalars.float(value, codingPath) }
    func decode(_ type: Int.Type) throws -> Int { try JSONScalars.integer(type, value, codingPath) }
    func decode(_ type: Int8.Type) throws -> Int8 { try JSONScalars.integer(type, value, codingPath) }
    func decode(_ type: Int16.Type) throws -> Int16 { try JSONScalars.integer(type, value, codingPath) }
    func decode(_ type: Int32.Type) throws -> Int32 { try JSONScalars.integer(type, value, codingPath) }
    func decode(_ type: Int64.Type) throws -> Int64 { try JSONScalars.integer(type, value, codingPath) }
    func decode(_ type: UInt.Type) throws -> UInt { try JSONScalars.integer(type, value, codingPath) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try JSONScalars.integer(type, value, codingPath) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try JSONScalars.integer(type, value, codingPath) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try JSONScalars.integer(type, value, codingPath) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try JSONScalars.integer(type, value, codingPath) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONValueDecoder.decode(type, from: value, codingPath: codingPath)
    }
}
