import CEventShim

/// A reply as hiredis parsed it, borrowed for the duration of `RedisConnection.read`.
///
///     let n = try redis.read { $0.count }
public struct RedisReply {
    let pointer: OpaquePointer

    /// An error reply.
    public var isError: Bool { ce_reply_type(pointer) == Int32(CE_REPLY_ERROR.rawValue) }
    /// An array reply.
    public var isArray: Bool { ce_reply_type(pointer) == Int32(CE_REPLY_ARRAY.rawValue) }
    /// A nil reply (a blocking pop that timed out, a missing key).
    public var isNil: Bool { ce_reply_type(pointer) == Int32(CE_REPLY_NIL.rawValue) }
    /// Elements of an array reply (0 for any other kind).
    public var count: Int { ce_reply_elements(pointer) }
    /// Element `i` of an array reply.
    public subscript(i: Int) -> RedisReply { RedisReply(pointer: ce_reply_element(pointer, i)!) }
    /// The bytes of a string, status or error reply, in place.
    public var bytes: UnsafeRawBufferPointer {
        var len = 0
        guard let p = ce_reply_str(pointer, &len) else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: UnsafeRawPointer(p), count: len)
    }
    /// The bytes as text.
    public var text: String { String(decoding: bytes, as: UTF8.self) }
    /// Error messages in this reply and, for an array, in its elements.
    public var errors: [String] {
        var out: [String] = []
        appendErrors(to: &out)
        return out
    }

    /// Append the error replies in this reply (and its elements) to `out`.
    private func appendErrors(to out: inout [String]) {
        if isError {
            out.append(text)
        } else {
            for i in 0..<count { self[i].appendErrors(to: &out) }
        }
    }
}
