import CEventShim

/// What the server reports; every method runs on the loop thread.
public protocol HTTPServerDelegate: AnyObject {
    func handle(_ request: HTTPRequest, on connection: Connection)
    func requestFailed(_ kind: Int32, on connection: Connection)
    func webSocketMessage(_ opcode: Int32, _ bytes: UnsafeRawBufferPointer, on connection: Connection)
    func webSocketFailed(_ kind: Int32, on connection: Connection)
    func webSocketClosed(code: Int, on connection: Connection)
    func connectionClosed(_ id: UInt64)
}
