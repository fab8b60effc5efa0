import CEventShim

/// A WebSocket protocol violation by the client (RFC 6455); the delegate closes
/// with 1009 for `.tooBig` and 1002 otherwise.
///
///     func webSocketFailed(_ error: WebSocketError, on connection: Connection) {
///         connection.close(code: error == .tooBig ? 1009 : 1002, reason: "\(error)")
///     }
public enum WebSocketError: Sendable, Equatable, CustomStringConvertible {
    /// A client frame without a mask.
    case unmasked
    /// RSV1-3 set without an extension.
    case reservedBits
    /// An unknown opcode.
    case badOpcode
    /// A fragmented control frame, or one over 125 bytes.
    case badControl
    /// A continuation without a start, or a new start mid-message.
    case badContinuation
    /// A message over `Limits.maxWebSocketMessageBytes`.
    case tooBig
    /// A close payload of one byte, or a bad close code.
    case badClose
    /// A non-minimal length, or a 64-bit length with the top bit set.
    case badLength
    /// A kind this type does not know (the C server's number).
    case other(Int)

    init(kind: Int32) {
        switch UInt32(bitPattern: kind) {
        case CE_WS_ERR_UNMASKED.rawValue: self = .unmasked
        case CE_WS_ERR_RESERVED_BITS.rawValue: self = .reservedBits
        case CE_WS_ERR_BAD_OPCODE.rawValue: self = .badOpcode
        case CE_WS_ERR_BAD_CONTROL.rawValue: self = .badControl
        case CE_WS_ERR_BAD_CONTINUATION.rawValue: self = .badContinuation
        case CE_WS_ERR_TOO_BIG.rawValue: self = .tooBig
        case CE_WS_ERR_BAD_CLOSE.rawValue: self = .badClose
        case CE_WS_ERR_BAD_LENGTH.rawValue: self = .badLength
        default: self = .other(Int(kind))
        }
    }

    /// The C server's number for the kind (as logged before these had names).
    public var kind: Int {
        switch self {
        case .unmasked: return Int(CE_WS_ERR_UNMASKED.rawValue)
        case .reservedBits: return Int(CE_WS_ERR_RESERVED_BITS.rawValue)
        case .badOpcode: return Int(CE_WS_ERR_BAD_OPCODE.rawValue)
        case .badControl: return Int(CE_WS_ERR_BAD_CONTROL.rawValue)
        case .badContinuation: return Int(CE_WS_ERR_BAD_CONTINUATION.rawValue)
        case .tooBig: return Int(CE_WS_ERR_TOO_BIG.rawValue)
        case .badClose: return Int(CE_WS_ERR_BAD_CLOSE.rawValue)
        case .badLength: return Int(CE_WS_ERR_BAD_LENGTH.rawValue)
        case .other(let n): return n
        }
    }

    public var description: String { String(kind) }
}
