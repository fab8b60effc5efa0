/// A decoder that makes a stand-in value of any ordinary type (zeros, empty strings and
/// lists, nil optionals) without any input. `ArgumentsDecoder` puts one in place of an
/// argument that is missing or does not fit, so it can go on through the other arguments
/// and report the failures Python would report first. A type whose `init(from:)` rejects
/// the stand-in (an enum with raw values, say) stops that search.
struct PlaceholderDecoder: Decoder {
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    /// Stand-ins inside stand-ins, bounded so a type that needs itself ends.
    let depth: Int

    init(codingPath: [any CodingKey] = [], depth: Int = 0) {
        self.codingPath = codingPath
        self.depth = depth
    }

    struct TooDeep: Error {}

    static func make<T: Decodable>(_ type: T.Type, codingPath: [any CodingKey] = [], depth: Int = 0) throws -> T {
        if let special = SpecialValues.placeholder(type) { return special }
        guard depth < 32 else { throw TooDeep() }
        return try T(from: PlaceholderDecoder(codingPath: codingPath, depth: depth + 1))
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(Keyed<Key>(codingPath: codingPath, depth: depth))
    }
    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { Unkeyed(codingPath: codingPath) }
    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        Single(codingPath: codingPath, depth: depth)
    }

    private struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let codingPath: [any CodingKey]
        let depth: Int
        var allKeys: [Key] { [] }
        func contains(_ key: Key) -> Bool { false }
        func decodeNil(forKey key: Key) throws -> Bool { true }
        func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { false }
        func decode(_ type: String.Type, forKey key: Key) throws -> String { "" }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            try PlaceholderDecoder.make(type, codingPath: codingPath + [key], depth: depth)
        }
        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? { nil }
        func nestedContainer<NestedKey: CodingKey>(
            keyedBy type: NestedKey.Type, forKey key: Key
        ) throws -> KeyedDecodingContainer<NestedKey> {
            KeyedDecodingContainer(Keyed<NestedKey>(codingPath: codingPath + [key], depth: depth))
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            Unkeyed(codingPath: codingPath + [key])
        }
        func superDecoder() throws -> any Decoder { PlaceholderDecoder(codingPath: codingPath, depth: depth + 1) }
        func superDecoder(forKey key: Key) throws -> any Decoder {
            PlaceholderDecoder(codingPath: codingPath + [key], depth: depth + 1)
        }
    }

    /// Always empty.
    private struct Unkeyed: UnkeyedDecodingContainer {
        let codingPath: [any CodingKey]
        var count: Int? { 0 }
        var isAtEnd: Bool { true }
        var currentIndex: Int { 0 }
        mutating func decodeNil() throws -> Bool { throw ArgumentValueError(codingPath, .tooFewItems) }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            throw ArgumentValueError(codingPath, .tooFewItems)
        }
        mutating func nestedContainer<NestedKey: CodingKey>(
            keyedBy type: NestedKey.Type
        ) throws -> KeyedDecodingContainer<NestedKey> { throw ArgumentValueError(codingPath, .tooFewItems) }
        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            throw ArgumentValueError(codingPath, .tooFewItems)
        }
        mutating func superDecoder() throws -> any Decoder { throw ArgumentValueError(codingPath, .tooFewItems) }
    }

    /// Zero, false, "", or nil for an optional.
    private struct Single: SingleValueDecodingContainer {
        let codingPath: [any CodingKey]
        let depth: Int
        func decodeNil() -> Bool { true }
        func decode(_ type: Bool.Type) throws -> Bool { false }
        func decode(_ type: String.Type) throws -> String { "" }
        func decode(_ type: Double.Type) throws -> Double { 0 }
        func decode(_ type: Float.Type) throws -> Float { 0 }
        func decode(_ type: Int.Type) throws -> Int { 0 }
        func decode(_ type: Int8.Type) throws -> Int8 { 0 }
        func decode(_ type: Int16.Type) throws -> Int16 { 0 }
        func decode(_ type: Int32.Type) throws -> Int32 { 0 }
        func decode(_ type: Int64.Type) throws -> Int64 { 0 }
        func decode(_ type: UInt.Type) throws -> UInt { 0 }
        func decode(_ type: UInt8.Type) throws -> UInt8 { 0 }
        func decode(_ type: UInt16.Type) throws -> UInt16 { 0 }
        func decode(_ type: UInt32.Type) throws -> UInt32 { 0 }
        func decode(_ type: UInt64.Type) throws -> UInt64 { 0 }
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try PlaceholderDecoder.make(type, codingPath: codingPath, depth: depth)
        }
    }
}
