import Logging

/// The `/ws` clients of one loop: fan-out of `task_status` with per-client
/// subscriptions (bounded per message and per client), a slow-consumer policy
/// that bounds memory, idle close, and close (1008) when a client's token expires.
/// A client added without `firehose` gets only the tasks it subscribes to.
/// Talks to its clients only through `WebSocketPeer` and reads "now" only from
/// its clock, so a test drives it with fake peers and a `ManualClock`.
///
///     let hub = WebSocketHub(settings: .init(), logger: log, clock: SystemClock()) { task, reply in reply("…") }
///     hub.add(connection); hub.broadcast(payload)
///     hub.keepalive()  // every `settings.pingIntervalMs`: pings, idle and stuck clients closed
public final class WebSocketHub {
    /// The fan-out's bounds and timers.
    ///
    ///     WebSocketHub.Settings(softLimitBytes: 64 << 10, stuckSeconds: 10, idleMs: 60_000)
    public struct Settings: Sendable {
        /// Above this many queued bytes a client gets final states only; progress is dropped.
        /// (Each shared frame also costs the client's buffer a small chain record, so keep it modest.)
        public var softLimitBytes: Int
        /// Above this a client is closed with 1013 (try again later): memory stays bounded.
        public var hardLimitBytes: Int
        /// A client over the soft limit this long is closed with 1008.
        public var stuckSeconds: Double
        /// How often `keepalive()` should run (the owner's timer).
        public var pingIntervalMs: UInt64
        /// A client silent this long (no pong, no message) is closed with 1001.
        public var idleMs: UInt64
        /// Most task ids one `subscribe` message may name (more: the message is refused).
        public var maxIdsPerMessage = 100
        /// Most tasks one client may be subscribed to at once.
        public var maxSubscriptions = 1000
        /// Longest task id accepted in `subscribe`.
        public static let maxTaskIdBytes = 255

        public init(
            softLimitBytes: Int = 64 * 1024, hardLimitBytes: Int = 4 * 1024 * 1024, stuckSeconds: Double = 10,
            pingIntervalMs: UInt64 = 20_000, idleMs: UInt64 = 60_000
        ) {
            self.softLimitBytes = softLimitBytes
            self.hardLimitBytes = hardLimitBytes
            self.stuckSeconds = stuckSeconds
            self.pingIntervalMs = pingIntervalMs
            self.idleMs = idleMs
        }
    }

    private final class Client {
        let peer: any WebSocketPeer
        var subscriptions: Set<String> = []
        /// When the client first stayed over the soft limit (nil: under it).
        var overSince: Double?
        /// When the client last sent anything, by the hub's clock.
        var heardAt: Double
        /// With no subscriptions: every task's messages (true), or none (false).
        let firehose: Bool
        /// When the client's token expires, by the hub's clock (nil: never).
        let expiresAt: Double?
        init(_ peer: any WebSocketPeer, now: Double, firehose: Bool, expiresAt: Double?) {
            self.peer = peer
            heardAt = now
            self.firehose = firehose
            self.expiresAt = expiresAt
        }
    }

    public let settings: Settings
    private let logger: Logger
    private let clock: any WallClock
    // Exclusivity: a hub is used on its loop's thread only: the run-time check is pure cost.
    @exclusivity(unchecked) private var clients: [UInt64: Client] = [:]
    /// `GET` of a task's current state for a new subscription: calls back with the message to send.
    private let currentState: (String, @escaping (String) -> Void) -> Void
    /// Called when nothing is queued for any client after a burst (at most once a second).
    private let releaseFreeMemory: () -> Void
    @exclusivity(unchecked) public private(set) var delivered = 0
    @exclusivity(unchecked) public private(set) var dropped = 0
    @exclusivity(unchecked) public private(set) var closedSlow = 0
    @exclusivity(unchecked) private var trimmedAt = 0.0

    /// `currentState(task, reply)` looks a task's state up for a new subscriber and
    /// calls `reply` with the message to send it.
    public init(
        settings: Settings, logger: Logger, clock: any WallClock = SystemClock(),
        releaseFreeMemory: @escaping () -> Void = HTTPServer.releaseFreeMemory,
        currentState: @escaping (String, @escaping (String) -> Void) -> Void
    ) {
        self.settings = settings
        self.logger = logger
        self.clock = clock
        self.releaseFreeMemory = releaseFreeMemory
        self.currentState = currentState
    }

    /// Counts since the last call (for counters), then reset.
    public func takeCounts() -> (delivered: Int, dropped: Int, closedSlow: Int) {
        defer { (delivered, dropped, closedSlow) = (0, 0, 0) }
        return (delivered, dropped, closedSlow)
    }

    /// Open clients.
    public var count: Int { clients.count }

    /// Whether the client with `id` is still served.
    public func contains(_ id: UInt64) -> Bool { clients[id] != nil }

    /// The tasks the client with `id` subscribed to (empty: every task, for a firehose client).
    public func subscriptions(of id: UInt64) -> Set<String> { clients[id]?.subscriptions ?? [] }

    /// Serve `peer`. Without `firehose` it gets only the tasks it subscribes to
    /// (a `ws` token without `ws:all`); at `expiresAt` (the hub's clock) it is closed with 1008.
    public func add(_ peer: any WebSocketPeer, firehose: Bool = true, expiresAt: Double? = nil) {
        clients[peer.id] = Client(peer, now: clock.now(), firehose: firehose, expiresAt: expiresAt)
    }

    public func remove(_ id: UInt64) { clients[id] = nil }

    /// Close every client with `code`.
    public func closeAll(code: Int, reason: String) {
        for c in clients.values { c.peer.close(code: code, reason: reason) }
    }

    /// Frame a `task_status` message once and queue the same bytes on every client that wants it.
    public func broadcast(_ payload: String) {
        guard !clients.isEmpty else { return }
        // The message is parsed only if a subscription or a slow client needs its task id or state.
        var parsed: JSON?? = nil
        func field(_ key: String) -> String? {
            if parsed == nil { parsed = .some(try? JSONParser.parse(payload)) }
            return parsed??[key]?.stringValue
        }
        guard let frame = WebSocketFrame(text: payload) else { return }
        let now = clock.now()
        for client in clients.values {
            if expired(client, now: now) { continue }
            if client.subscriptions.isEmpty {
                if !client.firehose { continue }
            } else if !(field("task_id").map(client.subscriptions.contains) ?? false) {
                continue
            }
            let pending = client.peer.queuedBytes
            if pending > settings.hardLimitBytes {
                closeSlow(client, code: 1013, reason: "client too slow: output over \(settings.hardLimitBytes) bytes")
                continue
            }
            if pending > settings.softLimitBytes {
                if isStuck(client, now: now) {
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
            client.peer.send(frame: frame)
            delivered += 1
        }
    }

    /// The client with `id` sent something (it is not idle).
    public func heard(from id: UInt64) { clients[id]?.heardAt = clock.now() }

    /// A client's text: `{"subscribe": [ids]}` / `{"unsubscribe": [ids] | "*"}`; true when it was one.
    /// A `subscribe` naming more than `maxIdsPerMessage` ids, or taking the client over
    /// `maxSubscriptions`, is answered with `{"error": …}` and not applied (in part, for the latter).
    public func command(_ text: String, from id: UInt64) -> Bool {
        guard let client = clients[id] else { return false }
        let now = clock.now()
        client.heardAt = now
        if expired(client, now: now) { return true }
        guard let json = try? JSONParser.parse(text), case .object = json else { return false }
        var handled = false
        if let ids = json["subscribe"]?.arrayValue {
            handled = true
            subscribe(client, ids)
        }
        if let un = json["unsubscribe"] {
            handled = true
            if un == "*" { client.subscriptions.removeAll() }
            for task in un.arrayValue?.compactMap(\.stringValue) ?? [] { client.subscriptions.remove(task) }
        }
        return handled
    }

    private func subscribe(_ client: Client, _ ids: [JSON]) {
        guard ids.count <= settings.maxIdsPerMessage else {
            return refuse(
                client, "too_many_ids", "subscribe names at most \(settings.maxIdsPerMessage) task ids per message")
        }
        for task in ids.compactMap(\.stringValue) where !client.subscriptions.contains(task) {
            guard !task.isEmpty, task.utf8.count <= Settings.maxTaskIdBytes else {
                refuse(client, "invalid_task_id", "task ids are 1 to \(Settings.maxTaskIdBytes) bytes")
                continue
            }
            guard client.subscriptions.count < settings.maxSubscriptions else {
                return refuse(
                    client, "too_many_subscriptions",
                    "at most \(settings.maxSubscriptions) subscriptions per connection; unsubscribe first")
            }
            client.subscriptions.insert(task)
            currentState(task) { [weak client] message in client?.peer.sendText(message) }
        }
    }

    private func refuse(_ client: Client, _ code: String, _ detail: String) {
        client.peer.sendText(JSON.object([("error", .string(code)), ("detail", .string(detail))]).serialized())
    }

    /// Close a client whose token has expired; true when it was.
    private func expired(_ client: Client, now: Double) -> Bool {
        guard let at = client.expiresAt, now >= at else { return false }
        logger.info("closing WebSocket \(client.peer.id) with 1008: token expired")
        client.peer.close(code: 1008, reason: "token expired")
        clients[client.peer.id] = nil
        return true
    }

    /// Run every `settings.pingIntervalMs`: ping every client; close the ones silent
    /// for longer than `idleMs` (1001), and the ones over the soft limit for longer
    /// than `stuckSeconds` (1008, even with no new messages), and the ones whose token expired (1008).
    public func keepalive() {
        let now = clock.now()
        trimIfIdle(now: now)
        for client in clients.values {
            if expired(client, now: now) { continue }
            if client.peer.queuedBytes > settings.softLimitBytes, isStuck(client, now: now) {
                closeSlow(client, code: 1008, reason: "client stopped reading")
                continue
            }
            // The transport also sees pongs and control frames the hub never gets.
            client.heardAt = max(client.heardAt, now - client.peer.idleSeconds)
            if (now - client.heardAt) * 1000 > Double(settings.idleMs) {
                client.peer.close(code: 1001, reason: "idle")
                clients[client.peer.id] = nil
            } else if client.peer.isOpen {
                client.peer.sendPing()
            }
        }
    }

    /// Over the soft limit now: true once it has been for longer than `stuckSeconds`.
    private func isStuck(_ client: Client, now: Double) -> Bool {
        let since = client.overSince ?? now
        client.overSince = since
        return now - since > settings.stuckSeconds
    }

    /// After a burst, hand freed buffers back to the OS once nothing is queued
    /// (glibc keeps them otherwise, and RSS would stay at the burst's peak).
    private func trimIfIdle(now: Double) {
        guard now - trimmedAt > 1 else { return }
        let queued = clients.values.reduce(0) { $0 + $1.peer.queuedBytes }
        if queued == 0 {
            trimmedAt = now
            releaseFreeMemory()
        }
    }

    private func closeSlow(_ client: Client, code: Int, reason: String) {
        closedSlow += 1
        logger.info("closing WebSocket \(client.peer.id) with \(code): \(reason)")
        client.peer.close(code: code, reason: reason)
        clients[client.peer.id] = nil
    }
}
