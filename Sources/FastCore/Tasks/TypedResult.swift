/// A task's output to and from the JSON its result stores.
///
///     let json = try TypedResult.encode(Sum(total: 5))        // {"total": 5}
///     let sum = try TypedResult.decode(Sum.self, from: json)
public enum TypedResult {
    /// A stored result as `T`; a value that does not fit throws `DecodingError`.
    public static func decode<T: Decodable>(_ type: T.Type, from json: JSON) throws -> T {
        do {
            return try JSONValueDecoder.decode(type, from: json)
        } catch let e as ArgumentValueError {
            throw e.decodingError
        }
    }

    /// `value` as JSON, as a worker stores it.
    public static func encode(_ value: some Encodable) throws -> JSON { try JSONValueEncoder.encode(value) }

    /// A task's output, or kombu's `EncodeError` when it cannot be encoded.
    static func output(_ value: some Encodable) throws(TaskFailure) -> JSON {
        do {
            return try JSONValueEncoder.encode(value)
        } catch {
            throw TaskFailure(type: "EncodeError", message: "\(error)", module: "kombu.exceptions")
        }
    }
}
