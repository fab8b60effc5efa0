/// What a complete client WebSocket message holds.
///
///     if kind == .text, UTF8Validator.isValid(bytes) { print(String(decoding: bytes, as: UTF8.self)) }
public enum WebSocketMessageKind: Sendable, Equatable {
    case text
    case binary
}
