import Logging

/// The `/ws` clients of one loop: per-client subscriptions (bounded per message and per
/// client), each followed through a `ResultSource` (every state of the task's result record,
/// snapshot first, nothing missed, final state last), fan-out of `task_status` to clients
/// with no subscriptions (the firehose, unless `settings.firehose` is off), a slow-consumer
/// policy that bounds memory (final states never dropped), idle close, and close (1008) when
/// a client's token expires. A client added without `firehose` gets only the tasks it subscribes to.
/// Talks to its clients only through `WebSocketPeer` and reads "now" only from
/// its clock, so a test drives it with fake peers, a fake `ResultSource` and a `ManualClock`.
///
///     let hub = WebSocketHub(settings: .init(), logger: log, clock: SystemClock(), results: resultWatch)
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
        /// Fan `task_status` out to clients with no subscriptions (false: `--no-firehose`,
        /// clients see only the tasks they subscribe to).
        public var firehose = true

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
        /// Subscribed tasks and their watch (a task leaves once its final state went out).
        var subscriptions: [String: ResultWatch.Token?] = [:]
        /// Subscribed to something since it last unsubscribed from everything: no firehose,
        /// even once every subscribed task has finished.
        var narrowed = false
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
    /// The clients `broadcast` serves: firehose taken, no subscriptions, not narrowed (kept as
    /// they change, so a `task_status` message costs nothing when every client subscribes).
    @exclusivity(unchecked) private var firehoseClients: [UInt64: Client] = [:]
    /// Every state of a subscribed task, snapshot first.
    private let results: any ResultSource
    /// Called when nothing is queued for any client after a burst (at most once a second).
    private let releaseFreeMemory: () -> Void
    @exclusivity(unchecked) public private(set) var delivered = 0
    @exclusivity(unchecked) public private(set) var dropped = 0
    @exclusivity(unchecked) public private(set) var closedSlow = 0
    @exclusivity(unchecked) private var trimmedAt = 0.0

    /// `results` follows each subscribed task (a `ResultWatch` on the hub's loop).
    public init(
        settings: Settings, logger: Logger, clock: any WallClock = SystemClock(),
        releaseFreeMemory: @escaping () -> Void = HTTPServer.releaseFreeMemory, results: any ResultSource
    ) {
        self.settings = settings
        self.logger = logger
        self.clock = clock
        self.releaseFreeMemory = releaseFreeMemory
        self.results = results
    }

    /// Counts since the last call (for counters), then reset.
    public func takeCounts() -> (delivered: Int, dropped: Int, closedSlow: Int) {
        defer { (delivered, dropped, closedSlow) = (0, 0, 0) }
        return (delivered, dropped, closedSlow)
    }

    /// Open clients.
    public var count: Int { clients.count }

    /// Clients that get `task_status` messages now (firehose on, no subscriptions).
    ///
    ///     if hub.firehoseCount == 0 { /* a task_status message is dropped unframed */ }
    public var firehoseCount: Int { settings.firehose ? firehoseClients.count : 0 }

    /// Keep `firehoseClients` in step with the client's subscriptions.
    private func refreshFirehose(_ client: Client) {
        let id = client.peer.id
        if clients[id] === client, client.firehose, client.subscriptions.isEmpty, !client.narrowed {
            firehoseClients[id] = client
        } else if firehoseClients[id] === client {
            firehoseClients[id] = nil
        }
    }

    /// Whether the client with `id` is still served.
    public func contains(_ id: UInt64) -> Bool { clients[id] != nil }

    /// The tasks the client with `id` follows now (subscribed to, final state not yet sent).
    public func subscriptions(of id: UInt64) -> Set<String> { clients[id].map { Set($0.subscriptions.keys) } ?? [] }

    /// Serve `peer`. Without `firehose` it gets only the tasks it subscribes to
    /// (a `ws` token without `ws:all`); at `expiresAt` (the hub's clock) it is closed with 1008.
    public func add(_ peer: any WebSocketPeer, firehose: Bool = true, expiresAt: Double? = nil) {
        let client = Client(peer, now: clock.now(), firehose: firehose, expiresAt: expiresAt)
        clients[peer.id] = client
        refreshFirehose(client)
    }

    public func remove(_ id: UInt64) {
        if let client = clients[id] { forget(client) }
    }

    /// Stop serving `client`: its watches end.
    private func forget(_ client: Client) {
        clients[client.peer.id] = nil
        refreshFirehose(client)
        unwatchAll(client)
    }

    private func unwatchAll(_ client: Client) {
        for case let token? in client.subscriptions.values { results.unwatch(token) }
        for task in client.subscriptions.keys { client.subscriptions[task] = .some(nil) }
    }

    /// Close every client with `code`.
    public func closeAll(code: Int, reason: String) {
        for c in clients.values { c.peer.close(code: code, reason: reason) }
    }

    /// Frame a `task_status` message once and queue the same bytes on every client that wants
    /// it: the clients with no subscriptions that take the firehose (nobody with `settings.firehose` off).
    /// Costs nothing (no framing, no pass over the clients) when no client takes it.
    public func broadcast(_ payload: String) {
        guard settings.firehose, !firehoseClients.isEmpty else { return }
        // The message is parsed only if a subscription or a slow client needs its task id or state.
        var parsed: JSON?? = nil
        func field(_ key: String) -> String? {
            if parsed == nil { parsed = .some(try? JSONParser.parse(payload)) }
            return parsed??[key]?.stringValue
        }
        var frame: SharedFrame?  // framed for the first client that takes it
        let now = clock.now()
        for client in firehoseClients.values {
            if expired(client, now: now) { continue }
            guard
                admits(client, now: now, isFinal: { ["SUCCESS", "FAILURE", "REVOKED"].contains(field("state") ?? "") })
            else { continue }
            if frame == nil {
                guard let made = SharedFrame(text: payload) else { return }
                frame = made
            }
            guard let frame else { return }
            client.peer.send(frame: frame.frame)
            delivered += 1
        }
    }

    /// The slow-consumer policy for one message: false when the client was closed, or when
    /// it is over the soft limit and the message is not a final state (dropped).
    private func admits(_ client: Client, now: Double, isFinal: () -> Bool) -> Bool {
        let pending = client.peer.queuedBytes
        if pending > settings.hardLimitBytes {
            closeSlow(client, code: 1013, reason: "client too slow: output over \(settings.hardLimitBytes) bytes")
            return false
        }
        if pending > settings.softLimitBytes {
            if isStuck(client, now: now) {
                closeSlow(client, code: 1008, reason: "client stopped reading")
                return false
            }
            // progress is superseded by the next update: drop it for this client
            if !isFinal() {
                dropped += 1
                return false
            }
        } else {
            client.overSince = nil
        }
        return true
    }

    /// A subscribed task's new state for one client (framed once for every client watching it).
    private func deliver(_ update: ResultWatch.Update, to client: Client) {
        guard clients[client.peer.id] === client else { return }
        if update.isFinal, let token = client.subscriptions.removeValue(forKey: update.taskId) ?? nil {
            // Nothing follows a final state: the watch and the subscription end (it no longer
            // counts against `maxSubscriptions`; the client stays narrowed to its subscriptions).
            results.unwatch(token)
        }
        let now = clock.now()
        if expired(client, now: now) { return }
        guard admits(client, now: now, isFinal: { update.isFinal }) else { return }
        // Framed once, on the update itself: every client watching the task shares the bytes.
        if update.frame == nil { update.frame = SharedFrame(text: update.message) }
        guard let frame = update.frame else { return }
        client.peer.send(frame: frame.frame)
        delivered += 1
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
            if un == "*" {
                unwatchAll(client)
                client.subscriptions.removeAll()
            }
            for task in un.arrayValue?.compactMap(\.stringValue) ?? [] {
                if let token = client.subscriptions.removeValue(forKey: task) ?? nil { results.unwatch(token) }
            }
            if client.subscriptions.isEmpty { client.narrowed = false }
        }
        refreshFirehose(client)
        return handled
    }

    private func subscribe(_ client: Client, _ ids: [JSON]) {
        guard ids.count <= settings.maxIdsPerMessage else {
            return refuse(
                client, "too_many_ids", "subscribe names at most \(settings.maxIdsPerMessage) task ids per message")
        }
        for task in ids.compactMap(\.stringValue) where client.subscriptions[task] == nil {
            guard !task.isEmpty, task.utf8.count <= Settings.maxTaskIdBytes else {
                refuse(client, "invalid_task_id", "task ids are 1 to \(Settings.maxTaskIdBytes) bytes")
                continue
            }
            guard client.subscriptions.count < settings.maxSubscriptions else {
                return refuse(
                    client, "too_many_subscriptions",
                    "at most \(settings.maxSubscriptions) subscriptions per connection; unsubscribe first")
            }
            guard
                let token = results.watch(
                    task,
                    { [weak self, weak client] update in
                        guard let self, let client else { return }
                        self.deliver(update, to: client)
                    })
            else {
                return refuse(client, "overloaded", "this server follows too many tasks now; retry later")
            }
            client.subscriptions[task] = token
            client.narrowed = true
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
        forget(client)
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
                forget(client)
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
        forget(client)
    }
}

/// A frame (noncopyable) in a box the hub can keep between clients (on `ResultWatch.Update.frame`).
final class SharedFrame {
    let frame: WebSocketFrame
    init?(text: String) {
        guard let f = WebSocketFrame(text: text) else { return nil }
        frame = f
    }
}
