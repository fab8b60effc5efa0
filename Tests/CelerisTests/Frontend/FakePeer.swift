import FastCore

/// A WebSocket client as the hub sees it, recording what it is sent.
final class FakePeer: WebSocketPeer {
    let id: UInt64
    var isOpen = true
    var queuedBytes = 0
    /// What the transport would report; `.infinity`: nothing heard since it opened.
    var idleSeconds = Double.infinity
    private(set) var received: [String] = []
    private(set) var pings = 0
    private(set) var closedWith: (code: Int, reason: String)?

    init(id: UInt64) { self.id = id }

    func send(frame: borrowing WebSocketFrame) { received.append(frame.text) }
    func sendText(_ text: String) { received.append(text) }
    func sendPing() { pings += 1 }
    func close(code: Int, reason: String) {
        closedWith = (code, reason)
        isOpen = false
    }

    /// Task ids of the messages received.
    var tasks: [String] { received.compactMap { (try? JSONParser.parse($0))?["task_id"]?.stringValue } }
}
