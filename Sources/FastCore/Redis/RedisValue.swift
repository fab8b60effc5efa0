import CEventShim

/// A Redis reply copied out of hiredis.
public enum RedisValue: Sendable, Equatable {
    case string([UInt8])
    case integer(Int64)
    case array([RedisValue])
    case null
    case status(String)
    case error(String)

    /// Copy a hiredis reply tree.
    init(reply: OpaquePointer) {
        switch Int32(ce_reply_type(reply)) {
        case Int32(CE_REPLY_STRING.rawValue):
            var len = 0
            let p = ce_reply_str(reply, &len)
            self = .string(p.map { Array(UnsafeRawBufferPointer(start: UnsafeRawPointer($0), count: len)) } ?? [])
        case Int32(CE_REPLY_INTEGER.rawValue):
            self = .integer(ce_reply_integer(reply))
        case Int32(CE_REPLY_ARRAY.rawValue):
            let n = ce_reply_elements(reply)
            self = .array((0..<n).map { RedisValue(reply: ce_reply_element(reply, $0)!) })
        case Int32(CE_REPLY_STATUS.rawValue):
            self = .status(RedisValue.text(reply))
        case Int32(CE_REPLY_ERROR.rawValue):
            self = .error(RedisValue.text(reply))
        default:
            self = .null
        }
    }

    private static func text(_ reply: OpaquePointer) -> String {
        var len = 0
        guard let p = ce_reply_str(reply, &len) else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: UnsafeRawPointer(p), count: len), as: UTF8.self)
    }

    /// The bytes of a bulk string as text.
    public var text: String? {
        switch self {
        case .string(let b): return String(decoding: b, as: UTF8.self)
        case .status(let s): return s
        default: return nil
        }
    }

    public var bytes: [UInt8]? { if case .string(let b) = self { return b } else { return nil } }
    public var integer: Int64? { if case .integer(let i) = self { return i } else { return nil } }
    public var elements: [RedisValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var errorMessage: String? { if case .error(let e) = self { return e } else { return nil } }
}
