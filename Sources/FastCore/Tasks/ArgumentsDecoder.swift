/// The decoder an arguments type reads a Celery call through: a keyed container binds its
/// fields to `args`/`kwargs` (`ArgumentBinding`), an unkeyed one reads `args`, a single
/// value is one parameter, `value`. Values that are missing or do not fit are recorded and
/// stood in for, so the whole type is asked for before the failure is chosen.
struct ArgumentsDecoder: Decoder, JSONValueSource {
    let binding: ArgumentBinding
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        if binding.shape == .list { throw binding.typeError("takes its arguments both as a list and by name") }
        binding.shape = .keyed
        return KeyedDecodingContainer(Keyed<Key>(binding: binding))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        if binding.shape == .keyed { throw binding.typeError("takes its arguments both as a list and by name") }
        binding.shape = .list
        if let (key, _) = binding.kwargs.first {
            throw binding.typeError("got an unexpected keyword argument '\(key)'")
        }
        return JSONUnkeyedDecoding(items: binding.args, codingPath: [])
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        if binding.shape == .list { throw binding.typeError("takes its arguments both as a list and by name") }
        binding.shape = .keyed
        return Single(binding: binding)
    }

    /// `JSON` as the arguments type: one parameter, `value`.
    func jsonValue() throws -> JSON {
        binding.shape = .keyed
        return try Single(binding: binding).decode(JSON.self)
    }

    /// Decode parameter `key` (required): a stand-in when it is missing or does not fit.
    static func value<T: Decodable>(_ type: T.Type, _ key: any CodingKey, _ binding: ArgumentBinding) throws -> T {
        guard let v = binding.bind(key.stringValue, required: true) else {
            binding.recordMissing(key.stringValue)
            return try binding.placeholder(type, [key])
        }
        do {
            return try JSONValueDecoder.decode(type, from: v, codingPath: [key])
        } catch {
            binding.record(error)
            return try binding.placeholder(type, [key])
        }
    }

    /// Decode parameter `key` (optional): nil when missing, null, or not fitting (recorded).
    static func optional<T: Decodable>(_ type: T.Type, _ key: any CodingKey, _ binding: ArgumentBinding) -> T? {
        guard let v = binding.bind(key.stringValue, required: false), !v.isNull else { return nil }
        do {
            return try JSONValueDecoder.decode(type, from: v, codingPath: [key])
        } catch {
            binding.record(error)
            return nil
        }
    }

    /// The fields of a keyed arguments type.
    private struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let binding: ArgumentBinding
        var codingPath: [any CodingKey] { [] }

        /// The keyword arguments' names (a dictionary asks for them): keyword-only from here on.
        var allKeys: [Key] {
            binding.keywordOnly = true
            return binding.kwargs.compactMap { Key(stringValue: $0.key) }
        }
        func contains(_ key: Key) -> Bool { binding.bind(key.stringValue, required: false) != nil }
        func decodeNil(forKey key: Key) throws -> Bool {
            binding.bind(key.stringValue, required: false)?.isNull ?? true
        }
        func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try value(type, key, binding) }
        func decode(_ type: String.Type, forKey key: Key) throws -> String { try value(type, key, binding) }
        func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try value(type, key, binding) }
        func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try value(type, key, binding) }
        func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try value(type, key, binding) }
        func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try value(type, key, binding) }
        func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try value(type, key, binding) }
        func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try value(type, key, binding) }
        func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try value(type, key, binding) }
        func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try value(type, key, binding) }
        func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try value(type, key, binding) }
        func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try value(type, key, binding) }
        func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try value(type, key, binding) }
        func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try value(type, key, binding) }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try value(type, key, binding) }
        func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { optional(type, key, binding) }
        func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { optional(type, key, binding) }
        func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { optional(type, key, binding) }
        func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? { optional(type, key, binding) }
        func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { optional(type, key, binding) }
        func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { optional(type, key, binding) }
        func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { optional(type, key, binding) }
        func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { optional(type, key, binding) }
        func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { optional(type, key, binding) }
        func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { optional(type, key, binding) }
        func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { optional(type, key, binding) }
        func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { optional(type, key, binding) }
        func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { optional(type, key, binding) }
        func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { optional(type, key, binding) }
        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
            optional(type, key, binding)
        }
        func nestedContainer<NestedKey: CodingKey>(
            keyedBy type: NestedKey.Type, forKey key: Key
        ) throws -> KeyedDecodingContainer<NestedKey> {
            try decoder(for: key).container(keyedBy: type)
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            try decoder(for: key).unkeyedContainer()
        }
        func superDecoder() throws -> any Decoder { ArgumentsDecoder(binding: binding) }
        func superDecoder(forKey key: Key) throws -> any Decoder { try decoder(for: key) }

        /// A decoder over parameter `key`'s value: a stand-in one when it is missing or is not
        /// a list or object.
        private func decoder(for key: Key) throws -> any Decoder {
            guard let v = binding.bind(key.stringValue, required: true) else {
                binding.recordMissing(key.stringValue)
                return PlaceholderDecoder(codingPath: [key])
            }
            return JSONValueDecoder(v, codingPath: [key])
        }
    }

    /// The one parameter, `value`, of an arguments type that is a single value (`Int`, `JSON`…).
    private struct Single: SingleValueDecodingContainer {
        let binding: ArgumentBinding
        var codingPath: [any CodingKey] { [] }
        private static let key = JSONPathKey(stringValue: "value")

        func decodeNil() -> Bool { binding.bind("value", required: false)?.isNull ?? true }
        func decode(_ type: Bool.Type) throws -> Bool { try value(type, Self.key, binding) }
        func decode(_ type: String.Type) throws -> String { try value(type, Self.key, binding) }
        func decode(_ type: Double.Type) throws -> Double { try value(type, Self.key, binding) }
        func decode(_ type: Float.Type) throws -> Float { try value(type, Self.key, binding) }
        func decode(_ type: Int.Type) throws -> Int { try value(type, Self.key, binding) }
        func decode(_ type: Int8.Type) throws -> Int8 { try value(type, Self.key, binding) }
        func decode(_ type: Int16.Type) throws -> Int16 { try value(type, Self.key, binding) }
        func decode(_ type: Int32.Type) throws -> Int32 { try value(type, Self.key, binding) }
        func decode(_ type: Int64.Type) throws -> Int64 { try value(type, Self.key, binding) }
        func decode(_ type: UInt.Type) throws -> UInt { try value(type, Self.key, binding) }
        func decode(_ type: UInt8.Type) throws -> UInt8 { try value(type, Self.key, binding) }
        func decode(_ type: UInt16.Type) throws -> UInt16 { try value(type, Self.key, binding) }
        func decode(_ type: UInt32.Type) throws -> UInt32 { try value(type, Self.key, binding) }
        func decode(_ type: UInt64.Type) throws -> UInt64 { try value(type, Self.key, binding) }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try value(type, Self.key, binding) }
    }
}
