/// One open WebSocket as the fan-out sees it: what it can be sent, how far
/// behind it is, and how to close it. `Connection` is the real one; tests
/// drive `WebSocketHub` with their own.
///
///     final class FakePeer: WebSocketPeer { … }
///     hub.add(FakePeer(id: 1))
public protocol WebSocketPeer: AnyObject {
    /// Process-unique, stable for the connection's life.
    var id: UInt64 { get }
    /// False once the socket has closed.
    var isOpen: Bool { get }
    /// Bytes queued for the peer and not yet written (the slow-consumer policy's measure).
    var queuedBytes: Int { get }
    /// Seconds since the peer last sent anything, pongs included, as the transport saw it.
    var idleSeconds: Double { get }
    /// Queue a frame shared with other peers.
    func send(frame: borrowing WebSocketFrame)
    /// Send one text message to this peer only.
    func sendText(_ text: String)
    /// Send a ping (the peer answers with a pong, which counts as activity).
    func sendPing()
    /// Start the close handshake with `code` and `reason`.
    func close(code: Int, reason: String)
}
