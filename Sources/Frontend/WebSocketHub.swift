import CEventShim
import FastCore
import Logging

/// The `/ws` clients: fan-out of `task_status` with per-client subscriptions,
/// a slow-consumer policy that bounds memory, and ping keepalive.
///
///     let hub = WebSocketHub(loop: loop, settings: .init(), logger: log, currentState: lookup)
///     hub.add(connection); hub.broadcast(payload)
final class WebSocketHub {
    struct Settings {
        /// Above this many queued bytes a client gets final states only; progress is dropped.
        /// (Each shared frame also costs the client's buffer a small chain record, so keep it modest.)
        var softLimitBytes = 64 * 1024
        /// Above this a client is closed with 1013 (try again later): memory stays bounded.
        var hardLimitBytes = 4 * 1024 * 1024
        /// A client over the soft limit this long is closed with 1008.
        var stuckSeconds = 10.0
        var pingIntervalMs: UInt64 = 20_000
        /// A client silent this long (no pong, no message) is closed with 1001.
        var idleMs: UInt64 = 60_000
    }

    private final class Client {
        let connection: Connection
        var subscriptions: Set<String> = []
        var overSince: Double?
        init(_ c: Connection) { connection = c }
    }

    private let settings: Settings
    private let logger: Logger
    private var clients: [UInt64: Client] = [:]
    private var pinger: LoopTimer?
    /// `GET` of a task's current state for a new subscription: calls back with the message to send.
    private let currentState: (String, @escaping (String) -> Void) -> Void
    private(set) var delivered = 0
    private(set) var dropped = 0
    private(set) var closedSlow = 0

    /// Counts since the last call (for counters), then reset.
    func takeCounts() -> (delivered: Int, dropped: Int, closedSlow: Int) {
        defer { (delivered, dropped, closedSlow) = (0, 0, 0) }
        return (delivered, dropped, closedSlow)
    }

    init(
        loop: EventLoop, settings: Settings, logger: Logger,
        currentState: @escaping (String, @escaping (String) -> Void) -> Void
    ) {
        self.settings = settings
        self.logger = logger
        self.currentState = currentState
        pinger = loop.timer(after: settings.pingIntervalMs, repeating: true) { [weak self] in self?.keepalive() }
    }

    var count: Int { clients.count }

    func add(_ c: Connection) { clients[c.id] = Client(c) }

    func remove(_ id: UInt64) { clients[id] = nil }

    /// Close every client with `code`.
    func closeAll(code: Int, reason: String) {
        for c in clients.values { c.connection.closeWebSocket(code: code, reason: reason) }
    }

    /// Frame a `task_status` message once and queue the same bytes on every client that wants it.
    func broadcast(_ payload: String) {
        guard !clients.isEmpty else { return }
        // The message is parsed only if a subscription or a slow client needs its task id or state.
        var parsed: JSON?? = nil
        func field(_ key: String) -> String? {
            if parsed == nil { parsed = .some(try? JSONParser.parse(payload)) }
            return parsed??[key]?.stringValue
        }
        var text = payload
        guard
            let frame = text.withUTF8({ b in
                ce_frame_new(
                    Int32(CE_WS_TEXT.rawValue), UnsafeRawPointer(b.baseAddress)?.assumingMemoryBound(to: CChar.self),
                    b.count)
            })
        else { return }
        defer { ce_frame_release(frame) }
        let now = CeleryTime.now()
        for client in clients.values {
            if !client.subscriptions.isEmpty, !(field("task_id").map(client.subscriptions.contains) ?? false) {
                continue
            }
            let pending = ce_conn_output_pending(client.connection.handle)
            if pending > settings.hardLimitBytes {
                closeSlow(client, code: 1013, reason: "client too slow: output over \(settings.hardLimitBytes) bytes")
                continue
            }
            if pending > settings.softLimitBytes {
                let since = client.overSince ?? now
                client.overSince = since
                if now - since > settings.stuckSeconds {
                    closeSlow(client, code: 1008, reason: "client stopped reading")
                    continue
                }
                // progress is superseded by the next update: drop it for this client
                if !["SUCCESS", "FAILURE", "REVOKED"].contains(field("state") ?? "") {
                    dropped += 1
                    continue
                }
            } else {
                client.overSince = nil
            }
            client.connection.send(frame: frame)
            delivered += 1
        }
    }

    /// A client's text: `{"subscribe": [ids]}` / `{"unsubscribe": [ids] | "*"}`; true when it was one.
    func command(_ text: String, from id: UInt64) -> Bool {
        guard let client = clients[id], let json = try? JSONParser.parse(text), case .object = json else {
            return false
        }
        var handled = false
        if let ids = json["subscribe"]?.arrayValue?.compactMap(\.stringValue) {
            handled = true
            for task in ids where !client.subscriptions.contains(task) {
                client.subscriptions.insert(task)
                currentState(task) { [weak client] message in client?.connection.sendText(message) }
            }
        }
        if let un = json["unsubscribe"] {
            handled = true
            if un == "*" { client.subscriptions.removeAll() }
            for task in un.arrayValue?.compactMap(\.stringValue) ?? [] { client.subscriptions.remove(task) }
        }
        return handled
    }

    /// After a burst, hand freed buffers back to the OS once nothing is queued
    /// (glibc keeps them otherwise, and RSS would stay at the burst's peak).
    private var trimmedAt = 0.0
    private func trimIfIdle() {
        let now = CeleryTime.now()
        guard now - trimmedAt > 1 else { return }
        let queued = clients.values.reduce(0) { $0 + ce_conn_output_pending($1.connection.handle) }
        if queued == 0 {
            trimmedAt = now
            ce_release_free_memory()
        }
    }

    private func closeSlow(_ client: Client, code: Int, reason: String) {
        closedSlow += 1
        logger.info("closing WebSocket \(client.connection.id) with \(code): \(reason)")
        client.connection.closeWebSocket(code: code, reason: reason)
        clients[client.connection.id] = nil
    }

    /// Ping every client; close the ones silent for longer than `idleMs`, and the
    /// ones stuck over the soft limit for longer than `stuckSeconds` (even with no new messages).
    private func keepalive() {
        let now = CeleryTime.now()
        trimIfIdle()
        for client in clients.values {
            if ce_conn_output_pending(client.connection.handle) > settings.softLimitBytes {
                let since = client.overSince ?? now
                client.overSince = since
                if now - since > settings.stuckSeconds {
                    closeSlow(client, code: 1008, reason: "client stopped reading")
                    continue
                }
            }
            if ce_conn_idle_ms(client.connection.handle) > settings.idleMs {
                client.connection.closeWebSocket(code: 1001, reason: "idle")
                clients[client.connection.id] = nil
            } else {
                _ = ce_ws_send(client.connection.handle, Int32(CE_WS_PING.rawValue), "celeris", 7)
            }
        }
    }
}
