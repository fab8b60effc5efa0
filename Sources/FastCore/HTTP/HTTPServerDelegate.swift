/// What the server reports; every method runs on the loop thread. Only
/// `handle(_:on:)` is required: a server without WebSockets can leave the rest.
///
///     final class Hello: HTTPServerDelegate {
///         func handle(_ request: HTTPRequest, on connection: Connection) {
///             connection.respond(status: 200, json: ["hello": "world"])
///         }
///     }
public protocol HTTPServerDelegate: AnyObject {
    func handle(_ request: HTTPRequest, on connection: Connection)
    /// A request could not be read; answer it (the connection closes after).
    func requestFailed(_ error: HTTPRequestError, on connection: Connection)
    /// A complete WebSocket message; `bytes` is valid only during the call.
    func webSocketMessage(_ kind: WebSocketMessageKind, _ bytes: UnsafeRawBufferPointer, on connection: Connection)
    func webSocketFailed(_ error: WebSocketError, on connection: Connection)
    func webSocketClosed(code: Int, on connection: Connection)
    func connectionClosed(_ id: UInt64)
}

extension HTTPServerDelegate {
    /// 400 and close.
    public func requestFailed(_ error: HTTPRequestError, on connection: Connection) {
        connection.respond(status: 400, json: ["error": "bad_request", "detail": "malformed request"], close: true)
    }
    public func webSocketMessage(
        _ kind: WebSocketMessageKind, _ bytes: UnsafeRawBufferPointer, on connection: Connection
    ) {}
    /// Close with 1009 for a message too big, 1002 otherwise.
    public func webSocketFailed(_ error: WebSocketError, on connection: Connection) {
        connection.close(code: error == .tooBig ? 1009 : 1002, reason: "protocol error")
    }
    public func webSocketClosed(code: Int, on connection: Connection) {}
    public func connectionClosed(_ id: UInt64) {}
}
