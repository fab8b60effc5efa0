/// Encodes an `Encodable` straight into a `JSON` value (no text in between): integers stay
/// `.int`, doubles `.double`, keys in the order they are encoded, a `Date` as kombu's
/// `{"__type__": "datetime", "__value__": "<isoformat>"}`.
///
///     let json = try JSONValueEncoder.encode(Point(x: 1, y: 2))   // {"x": 1, "y": 2}
struct JSONValueEncoder: Encoder {
    let slot: Slot
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    /// What the top of a value was encoded as.
    enum Shape { case keyed, unkeyed, single }

    static func encode(_ value: some Encodable, codingPath: [any CodingKey] = []) throws -> JSON {
        try encodeTop(value, codingPath: codingPath).json
    }

    static func encodeTop(_ value: some Encodable, codingPath: [any CodingKey] = []) throws -> (
        json: JSON, shape: Shape
    ) {
        if let special = SpecialValues.encode(value) { return (special, .single) }
        let slot = Slot()
        try value.encode(to: JSONValueEncoder(slot: slot, codingPath: codingPath))
        switch slot.node {
        case .object(let o): return (o.build(), .keyed)
        case .array(let a): return (a.build(), .unkeyed)
        case .value(let v): return (v, .single)
        case .slot(let s): return (s.build(), .single)
        case nil: return (.object([]), .keyed)
        }
    }

    /// Set by `JSON`'s own `encode(to:)`: the value as it is.
    func store(_ json: JSON) { slot.node = .value(json) }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let object: Object
        if case .object(let existing) = slot.node {
            object = existing
        } else {
            object = Object()
            slot.node = .object(object)
        }
        return KeyedEncodingContainer(Keyed<Key>(object: object, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let array: Array
        if case .array(let existing) = slot.node {
            array = existing
        } else {
            array = Array()
            slot.node = .array(array)
        }
        return Unkeyed(array: array, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { Single(slot: slot, codingPath: codingPath) }

    /// A value being built: containers hand out references, filled in as encoding goes on.
    enum Node {
        case value(JSON)
        case object(Object)
        case array(Array)
        case slot(Slot)

        func build() -> JSON {
            switch self {
            case .value(let v): return v
            case .object(let o): return o.build()
            case .array(let a): return a.build()
            case .slot(let s): return s.build()
            }
        }
    }

    final class Slot {
        var node: Node?
        func build() -> JSON { node?.build() ?? .object([]) }
    }

    final class Object {
        var pairs: [(key: String, value: Node)] = []
        func build() -> JSON { .object(pairs.map { (key: $0.key, value: $0.value.build()) }) }
    }

    final class Array {
        var items: [Node] = []
        func build() -> JSON { .array(items.map { $0.build() }) }
    }

    static func integer<T: FixedWidthInteger>(_ value: T, _ codingPath: [any CodingKey]) throws -> JSON {
        guard let i = Int64(exactly: value) else {
            throw EncodingError.invalidValue(
                value, .init(codingPath: codingPath, debugDescription: "\(value) does not fit a JSON integer (Int64)"))
        }
        return .int(i)
    }

    /// A Float as the decimal it prints as (`0.1`, not `0.10000000149011612`).
    static func float(_ value: Float) -> JSON {
        .double(value.isFinite ? Double("\(value)") ?? Double(value) : Double(value))
    }

    private struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let object: Object
        let codingPath: [any CodingKey]

        private func put(_ key: Key, _ json: JSON) { object.pairs.append((key: key.stringValue, value: .value(json))) }

        mutating func encodeNil(forKey key: Key) throws { put(key, .null) }
        mutating func encode(_ value: Bool, forKey key: Key) throws { put(key, .bool(value)) }
        mutating func encode(_ value: String, forKey key: Key) throws { put(key, .string(value)) }
        mutating func encode(_ value: Double, forKey key: Key) throws { put(key, .double(value)) }
        mutating func encode(_ value: Float, forKey key: Key) throws { put(key, JSONValueEncoder.float(value)) }
        mutating func encode(_ value: Int, forKey key: Key) throws { put(key, .int(Int64(value))) }
        mutating func encode(_ value: Int8, forKey key: Key) throws { put(key, .int(Int64(value))) }
        mutating func encode(_ value: Int16, forKey key: Key) throws { put(key, .int(Int64(value))) }
        mutating func encode(_ value: Int32, forKey key: Key) throws { put(key, .int(Int64(value))) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { put(key, .int(value)) }
        mutating func encode(_ value: UInt, forKey key: Key) throws {
            put(key, try JSONValueEncoder.integer(value, codingPath + [key]))
        }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { put(key, .int(Int64(value))) }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { put(key, .int(Int64(value))) }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { put(key, .int(Int64(value))) }
        mutating func encode(_ value: UInt64, forKey key: Key) throws {
            put(key, try JSONValueEncoder.integer(value, codingPath + [key]))
        }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            put(key, try JSONValueEncoder.encode(value, codingPath: codingPath + [key]))
        }
        mutating func nestedContainer<NestedKey: CodingKey>(
            keyedBy keyType: NestedKey.Type, forKey key: Key
        ) -> KeyedEncodingContainer<NestedKey> {
            let nested = Object()
            object.pairs.append((key: key.stringValue, value: .object(nested)))
            return KeyedEncodingContainer(Keyed<NestedKey>(object: nested, codingPath: codingPath + [key]))
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            let nested = Array()
            object.pairs.append((key: key.stringValue, value: .array(nested)))
            return Unkeyed(array: nested, codingPath: codingPath + [key])
        }
        mutating func superEncoder() -> any Encoder {
            let slot = Slot()
            object.pairs.append((key: "super", value: .slot(slot)))
            return JSONValueEncoder(slot: slot, codingPath: codingPath + [JSONPathKey(stringValue: "super")])
        }
        mutating func superEncoder(forKey key: Key) -> any Encoder {
            let slot = Slot()
            object.pairs.append((key: key.stringValue, value: .slot(slot)))
            return JSONValueEncoder(slot: slot, codingPath: codingPath + [key])
        }
    }

    private struct Unkeyed: UnkeyedEncodingContainer {
        let array: Array
        let codingPath: [any CodingKey]
        var count: Int { array.items.count }

        private func put(_ json: JSON) { array.items.append(.value(json)) }
        private var nextPath: [any CodingKey] { codingPath + [JSONPathKey(intValue: count)] }

        mutating func encodeNil() throws { put(.null) }
        mutating func encode(_ value: Bool) throws { put(.bool(value)) }
        mutating func encode(_ value: String) throws { put(.string(value)) }
        mutating func encode(_ value: Double) throws { put(.double(value)) }
        mutating func encode(_ value: Float) throws { put(JSONValueEncoder.float(value)) }
        mutating func encode(_ value: Int) throws { put(.int(Int64(value))) }
        mutating func encode(_ value: Int8) throws { put(.int(Int64(value))) }
        mutating func encode(_ value: Int16) throws { put(.int(Int64(value))) }
        mutating func encode(_ value: Int32) throws { put(.int(Int64(value))) }
        mutating func encode(_ value: Int64) throws { put(.int(value)) }
        mutating func encode(_ value: UInt) throws { put(try JSONValueEncoder.integer(value, nextPath)) }
        mutating func encode(_ value: UInt8) throws { put(.int(Int64(value))) }
        mutating func encode(_ value: UInt16) throws { put(.int(Int64(value))) }
        mutating func encode(_ value: UInt32) throws { put(.int(Int64(value))) }
        mutating func encode(_ value: UInt64) throws { put(try JSONValueEncoder.integer(value, nextPath)) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            put(try JSONValueEncoder.encode(value, codingPath: nextPath))
        }
        mutating func nestedContainer<NestedKey: CodingKey>(
            keyedBy keyType: NestedKey.Type
        ) -> KeyedEncodingContainer<NestedKey> {
            let path = nextPath
            let nested = Object()
            array.items.append(.object(nested))
            return KeyedEncodingContainer(Keyed<NestedKey>(object: nested, codingPath: path))
        }
        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            let path = nextPath
            let nested = Array()
            array.items.append(.array(nested))
            return Unkeyed(array: nested, codingPath: path)
        }
        mutating func superEncoder() -> any Encoder {
            let path = nextPath
            let slot = Slot()
            array.items.append(.slot(slot))
            return JSONValueEncoder(slot: slot, codingPath: path)
        }
    }

    private struct Single: SingleValueEncodingContainer {
        let slot: Slot
        let codingPath: [any CodingKey]

        private func put(_ json: JSON) { slot.node = .value(json) }

        mutating func encodeNil() throws { put(.null) }
        mutating func encode(_ value: Bool) throws { put(.bool(value)) }
        mutating func encode(_ value: String) throws { put(.string(value)) }
        mutating func encode(_ value: Double) throws { put(.double(value)) }
        mutating func encode(_ value: Float) throws { put(JSONValueEncoder.float(value)) }
        mutating func encode(_ value: Int) throws { put(.int(Int64(value))) }
        mutating func encode(_ value: Int8) throws { put(.int(Int64(value))) }
        mutating func encode(_ value: Int16) throws { put(.int(Int64(value))) }
        mutating func encode(_ value: Int32) throws { put(.int(Int64(value))) }
        mutating func encode(_ value: Int64) throws { put(.int(value)) }
        mutating func encode(_ value: UInt) throws { put(try JSONValueEncoder.integer(value, codingPath)) }
        mutating func encode(_ value: UInt8) throws { put(.int(Int64(value))) }
        mutating func encode(_ value: UInt16) throws { put(.int(Int64(value))) }
        mutating func encode(_ value: UInt32) throws { put(.int(Int64(value))) }
        mutating func encode(_ value: UInt64) throws { put(try JSONValueEncoder.integer(value, codingPath)) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            put(try JSONValueEncoder.encode(value, codingPath: codingPath))
        }
    }
}
