import CEventShim
import Foundation
import Logging

/// A Redis connection on an `EventLoop` (a libevent bufferevent, plain or TLS), reconnecting by
/// itself: while it is down, `send` returns false and callers answer 503.
/// It counts as connected once Redis answers a PING on the new link; a reply owed
/// for longer than `Options.commandTimeoutMs` (a silent partition, a stalled Redis)
/// drops the link, fails every pending command (their callbacks get nil) and reconnects.
/// Host names (and a Sentinel endpoint's master) are resolved on a thread of their own, never on
/// the loop. A `rediss://` server is reached over TLS only: a failed handshake is a failed link.
///
///     let redis = AsyncRedis(loop: loop, endpoint: ep, logger: log)
///     redis.send(["LPUSH", "celery", envelope]) { reply in ... }
public final class AsyncRedis {
    /// How long Redis may take, and how a dead link is found.
    ///
    ///     AsyncRedis.Options(commandTimeoutMs: 2000, keepAliveSeconds: 10)
    public struct Options: Sendable, Equatable {
        /// A reply owed this long with nothing heard drops the link (0: wait for ever).
        public var commandTimeoutMs: UInt64
        /// A connection not answering its first PING within this is dropped (0: commandTimeoutMs).
        public var connectTimeoutMs: UInt64
        /// TCP keepalive idle time on the socket (0: off).
        public var keepAliveSeconds: Int
        /// A PING this often on an idle command connection, so a partition is found
        /// before a request needs Redis (0: off; connections with subscriptions never PING).
        public var heartbeatMs: UInt64

        public init(
            commandTimeoutMs: UInt64 = 5000, connectTimeoutMs: UInt64 = 0, keepAliveSeconds: Int = 15,
            heartbeatMs: UInt64 = 1000
        ) {
            self.commandTimeoutMs = commandTimeoutMs
            self.connectTimeoutMs = connectTimeoutMs
            self.keepAliveSeconds = keepAliveSeconds
            self.heartbeatMs = heartbeatMs
        }
    }

    public let endpoint: RedisEndpoint
    public let options: Options
    /// What this connection is for, in log lines ("commands", "pub/sub").
    public let role: String
    private let loop: EventLoop
    private let logger: Logger
    // Exclusivity: a connection is used on its loop's thread only: the run-time check is pure cost.
    @exclusivity(unchecked) private var handle: OpaquePointer?
    @exclusivity(unchecked) private var retired: [OpaquePointer] = []
    @exclusivity(unchecked) private var reconnectTimer: LoopTimer?
    /// Watches for owed replies (command timeout) and sends heartbeats.
    @exclusivity(unchecked) private var watchTimer: LoopTimer?
    @exclusivity(unchecked) private var connectTimer: LoopTimer?
    @exclusivity(unchecked) private var hostLookup: HostLookup?
    @exclusivity(unchecked) private var serverLookup: ServerLookup?
    @exclusivity(unchecked) private var dropTimer: LoopTimer?
    @exclusivity(unchecked) private var sinceHeartbeatMs: UInt64 = 0
    /// The TCP link is up (the PING that makes it usable may still be owed).
    @exclusivity(unchecked) private var linkUp = false
    /// Connection attempts that failed since the last good one (picks the next resolved address).
    @exclusivity(unchecked) private var failedAttempts = 0
    /// Links dropped because a reply was owed longer than the command timeout.
    @exclusivity(unchecked) public private(set) var timeouts = 0
    @exclusivity(unchecked) private var subscriptions: [(channel: String, onMessage: (String) -> Void)] = []
    /// Delay between reconnect attempts.
    @exclusivity(unchecked) public var reconnectDelayMs: UInt64 = 500
    /// Called with true on (re)connect and false when the link drops.
    @exclusivity(unchecked) public var onStateChange: ((Bool) -> Void)?
    /// Connected and answering (its first PING was answered).
    @exclusivity(unchecked) public private(set) var isConnected = false
    /// Why the last link failed or was dropped (nil once connected), for error messages.
    @exclusivity(unchecked) public private(set) var lastError: String?
    /// `close()` ran: no reconnect any more.
    @exclusivity(unchecked) private var closed = false
    /// The server the current (or last) link goes to: `endpoint`, or one of its failover list.
    @exclusivity(unchecked) public private(set) var server: RedisEndpoint
    /// Why the handshake (AUTH, SELECT) on the current link was refused, if it was.
    @exclusivity(unchecked) private var handshakeError: String?
    /// Behind sentinels: the last of their announcements this link has looked at (`SentinelAnnouncements`).
    @exclusivity(unchecked) private var sentinelSeen = 0

    public init(
        loop: EventLoop, endpoint: RedisEndpoint, role: String = "commands", options: Options = Options(),
        logger: Logger
    ) {
        self.loop = loop
        self.endpoint = endpoint
        self.server = endpoint
        self.role = role
        self.options = options
        self.logger = logger
    }

    /// Begin connecting; returns at once.
    public func start() { connect() }

    /// Close for good (on the loop's thread, never from one of its callbacks): every
    /// command whose reply is owed gets nil now, the link is freed, nothing reconnects.
    /// `onStateChange` is not called.
    ///
    ///     redis.close()
    public func close() {
        guard !closed else { return }
        closed = true
        for t in [reconnectTimer, watchTimer, connectTimer, dropTimer] { t?.cancel() }
        hostLookup?.cancel()
        serverLookup?.cancel()
        isConnected = false
        linkUp = false
        let h = handle
        handle = nil
        if let h { ce_redis_free(h) }
        for r in retired { ce_redis_free(r) }
        retired.removeAll()
    }

    /// Replies still awaited.
    public var pending: Int { handle.map { Int(ce_redis_pending($0)) } ?? 0 }

    /// Send a command; `callback` gets the reply, or nil if the link dropped first.
    /// Returns false (and never calls back) when not connected.
    @discardableResult
    public func send(_ args: [String], _ callback: @escaping (RedisValue?) -> Void) -> Bool {
        var wire: [UInt8] = []
        RESP.append(args, to: &wire)
        wire.append(0)
        return send(resp: wire, persistent: args.first.map { Self.isSubscribe($0.utf8) } ?? false, callback)
    }

    /// `send` with arguments already in bytes.
    @discardableResult
    public func send(bytes args: [[UInt8]], _ callback: @escaping (RedisValue?) -> Void) -> Bool {
        var wire: [UInt8] = []
        RESP.appendCount(args.count, to: &wire)
        for a in args { RESP.appendBulk(a, to: &wire) }
        wire.append(0)
        return send(resp: wire, persistent: args.first.map { Self.isSubscribe($0) } ?? false, callback)
    }

    /// SUBSCRIBE or PSUBSCRIBE, in any case: their callback stays for every message.
    private static func isSubscribe(_ name: some Collection<UInt8>) -> Bool {
        func matches(_ word: StaticString) -> Bool {
            name.count == word.utf8CodeUnitCount
                && zip(name, UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)).allSatisfy {
                    $0 | 0x20 == $1
                }
        }
        return matches("subscribe") || matches("psubscribe")
    }

    /// `send` of a command encoded as RESP (`RESP.append`); the one encoder every client shares.
    /// `wire` ends with a NUL, which is not sent (the C API's convention for a formatted command).
    private func send(resp wire: [UInt8], persistent: Bool = false, _ callback: @escaping (RedisValue?) -> Void)
        -> Bool
    {
        guard isConnected else { return false }
        return sendNow(resp: wire, persistent: persistent, callback)
    }

    /// `send` once the link is up, before it counts as connected (the handshake and its PING).
    private func sendNow(resp wire: [UInt8], persistent: Bool = false, _ callback: @escaping (RedisValue?) -> Void)
        -> Bool
    {
        guard linkUp, let h = handle, wire.last == 0 else { return false }
        let box = Unmanaged.passRetained(ReplyBox(callback, persistent: persistent)).toOpaque()
        let rc = wire.withUnsafeBytes {
            ce_redis_send(
                h, $0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count - 1, persistent ? 1 : 0,
                replyTrampoline,
                box)
        }
        if rc != 0 {
            Unmanaged<ReplyBox>.fromOpaque(box).release()
            return false
        }
        return true
    }

    /// Receive every message published on `channel`, across reconnects.
    public func subscribe(channel: String, onMessage: @escaping (String) -> Void) {
        subscriptions.append((channel, onMessage))
        if isConnected { issueSubscribe(channel: channel, onMessage: onMessage) }
    }

    private func issueSubscribe(channel: String, onMessage: @escaping (String) -> Void) {
        var wire = RESP.format(["SUBSCRIBE", channel])
        wire.append(0)
        _ = send(resp: wire, persistent: true) { reply in
            // ["message", channel, payload] per publish; ["subscribe", channel, n] once.
            guard let parts = reply?.elements, parts.count == 3, parts[0].text == "message", let payload = parts[2].text
            else { return }
            onMessage(payload)
        }
    }

    /// Take the servers to try (a Sentinel endpoint's master is asked of the sentinels off the
    /// loop), pick one (each attempt after a failure, or after a dropped link, takes the next
    /// of a failover list), resolve its host off the loop (a numeric address or a unix socket
    /// needs no lookup), then open a link to the address.
    private func connect() {
        guard !closed else { return }
        for r in retired { ce_redis_free(r) }
        retired.removeAll()
        guard endpoint.sentinel != nil else { return connect(among: endpoint.serversToTry) }
        serverLookup?.cancel()
        serverLookup = ServerLookup(endpoint: endpoint, timeoutMs: 2000, loop: loop) { [weak self] servers, error in
            guard let self, !self.closed else { return }
            guard !servers.isEmpty else {
                self.lastError = error ?? "no Redis server named"
                self.logger.warning("Redis (\(self.role)): \(self.lastError ?? ""); retrying")
                return self.scheduleReconnect()
            }
            self.connect(among: servers)
        }
    }

    private func connect(among servers: [RedisEndpoint]) {
        guard !closed else { return }
        server = servers[failedAttempts % servers.count]
        if server.socketPath != nil || RedisEndpoint.isNumericAddress(server.host) { return open(address: server.host) }
        let host = server.host
        let round = failedAttempts / servers.count
        hostLookup?.cancel()
        hostLookup = HostLookup(host: host, loop: loop) { [weak self] addresses in
            guard let self else { return }
            if !addresses.isEmpty {
                // Each attempt after a failure tries the next address (IPv6 first, then IPv4, say).
                self.open(address: addresses[round % addresses.count])
            } else {
                self.logger.debug("cannot resolve \(host) for Redis (\(self.role)); retrying")
                self.scheduleReconnect()
            }
        }
    }

    private func open(address: String) {
        guard !closed else { return }
        handshakeError = nil
        let context = Unmanaged.passUnretained(self).toOpaque()
        var tlsContext: OpaquePointer?
        if server.socketPath == nil, let tls = server.tls {
            do {
                tlsContext = try TLSContext.shared(for: tls).handle
            } catch {
                // A TLS setting that cannot be used (a missing CA file): a failed attempt, never plaintext.
                lastError = "\(error)"
                logger.error("Redis at \(server) (\(role)): \(error)")
                return scheduleReconnect()
            }
        }
        handle =
            if let path = server.socketPath {
                ce_redis_connect_unix(loop.handle, path, stateTrampoline, context)
            } else if let tls = server.tls, let tlsContext {
                ce_redis_connect_tls(
                    loop.handle, address, Int32(server.port), tlsContext, tls.serverName ?? server.host,
                    tls.checkHostname ? 1 : 0, stateTrampoline, context)
            } else {
                ce_redis_connect(loop.handle, address, Int32(server.port), stateTrampoline, context)
            }
        guard let h = handle else {
            lastError = server.socketPath.map { "cannot connect to unix socket \($0)" } ?? "cannot connect"
            return scheduleReconnect()
        }
        if server.socketPath == nil, options.keepAliveSeconds > 0 {
            _ = ce_redis_keepalive(h, Int32(clamping: options.keepAliveSeconds))
        }
        let limit = options.connectTimeoutMs > 0 ? options.connectTimeoutMs : options.commandTimeoutMs
        connectTimer?.cancel()
        if limit > 0 {
            connectTimer = loop.timer(after: limit) { [weak self] in
                guard let self, !self.linkUp, self.handle != nil else { return }
                self.drop(reason: "no connection within \(limit) ms")
            }
        }
        startWatching()
    }

    /// Check owed replies (and send heartbeats) while a link exists.
    private func startWatching() {
        guard watchTimer == nil, options.commandTimeoutMs > 0 || options.heartbeatMs > 0 || endpoint.sentinel != nil
        else { return }
        let tick = max(10, min(250, (options.commandTimeoutMs > 0 ? options.commandTimeoutMs : 1000) / 4))
        watchTimer = loop.timer(after: tick, repeating: true) { [weak self] in self?.watch(tickMs: tick) }
    }

    private func watch(tickMs: UInt64) {
        guard let h = handle, linkUp else { return }
        // Behind sentinels: the master they announce now, not the one they demote seconds later.
        if isConnected, let sentinel = endpoint.sentinel,
            let moved = SentinelAnnouncements.moved(sentinel, from: server, seen: &sentinelSeen, logger: logger)
        {
            return drop(reason: "the sentinels named \(moved) master")
        }
        let stalled = ce_redis_stalled_ms(h)
        if options.commandTimeoutMs > 0, stalled > options.commandTimeoutMs {
            timeouts += 1
            return drop(reason: "no reply within \(options.commandTimeoutMs) ms")
        }
        sinceHeartbeatMs += tickMs
        if isConnected, options.heartbeatMs > 0, sinceHeartbeatMs >= options.heartbeatMs, subscriptions.isEmpty,
            stalled == 0
        {
            sinceHeartbeatMs = 0
            send(["PING"]) { _ in }
        }
    }

    /// Close the link ourselves (a timeout, or a link that will not answer its PING): every
    /// pending command's callback gets nil now, then reconnect. Never called from a link callback.
    private func drop(reason: String) {
        guard let h = handle else { return }
        let wasConnected = isConnected
        isConnected = false
        linkUp = false
        handle = nil
        lastError = reason
        connectTimer?.cancel()
        ce_redis_free(h)
        if wasConnected {
            logger.warning("Redis at \(server) (\(role)): \(reason); reconnecting")
            onStateChange?(false)
        } else {
            logger.debug("Redis at \(server) (\(role)): \(reason); retrying")
        }
        scheduleReconnect()
    }

    /// `drop` once out of the link's callback, if the link is still the same one.
    private func dropLater(reason: String) {
        let link = handle
        dropTimer = loop.timer(after: 0) { [weak self] in
            guard let self, link != nil, self.handle == link else { return }
            self.drop(reason: reason)
        }
    }

    /// Behind sentinels: the server they named must say `ROLE` master (their answer may be stale
    /// mid-failover) before the link is used.
    private func requireMaster() {
        var wire = RESP.format(["ROLE"])
        wire.append(0)
        let sent = sendNow(resp: wire) { [weak self] reply in
            guard let self, let reply else { return }
            let role = reply.elements?.first?.text ?? reply.errorMessage ?? "unknown"
            if role == "master" {
                self.becomeReady()
            } else {
                self.dropLater(reason: "\(self.server), named by the sentinels, says ROLE \(role)")
            }
        }
        if !sent { dropLater(reason: "ROLE not sent") }
    }

    /// The link answered its PING: usable from now on.
    private func becomeReady() {
        guard linkUp, !isConnected else { return }
        isConnected = true
        lastError = nil
        failedAttempts = 0
        sinceHeartbeatMs = 0
        RedisEndpoint.answered(server, of: endpoint)
        for s in subscriptions { issueSubscribe(channel: s.channel, onMessage: s.onMessage) }
        logger.info("connected to \(server) (\(role))")
        onStateChange?(true)
    }

    private func scheduleReconnect() {
        guard !closed else { return }
        if !isConnected { failedAttempts += 1 }
        reconnectTimer = loop.timer(after: reconnectDelayMs) { [weak self] in self?.connect() }
    }

    fileprivate func stateChanged(_ state: Int32, _ error: String?) {
        switch UInt32(state) {
        case CE_REDIS_CONNECTED.rawValue:
            linkUp = true
            connectTimer?.cancel()
            let server = server
            for cmd in server.handshake {
                var wire = RESP.format(cmd)
                wire.append(0)
                _ = sendNow(resp: wire) { [weak self, logger] r in
                    guard let e = r?.errorMessage else { return }
                    let message = RedisConnection.handshakeError(e, server)
                    logger.error("Redis handshake failed: \(message)")
                    self?.handshakeError = message
                }
            }
            var ping = RESP.format(["PING"])
            ping.append(0)
            let sent = sendNow(resp: ping) { [weak self] reply in
                guard let self, let reply else { return }
                if let e = reply.errorMessage {
                    // Not usable yet (LOADING, NOAUTH…); a refused AUTH says more than the PING's NOAUTH.
                    self.dropLater(reason: self.handshakeError ?? "PING: \(e)")
                } else if let refused = self.handshakeError {
                    // A refused AUTH or SELECT: never run as the default user or in db 0 instead.
                    self.dropLater(reason: refused)
                } else if self.endpoint.sentinel != nil {
                    self.requireMaster()
                } else {
                    self.becomeReady()
                }
            }
            if !sent { dropLater(reason: "PING not sent") }
        default:
            let wasConnected = isConnected
            isConnected = false
            linkUp = false
            connectTimer?.cancel()
            if let h = handle { retired.append(h) }
            handle = nil
            lastError = error ?? "closed"
            if wasConnected {
                logger.warning("lost Redis at \(server) (\(role)): \(error ?? "closed"); reconnecting")
                onStateChange?(false)
            } else if let error, error.hasPrefix("TLS") {
                logger.error("Redis at \(server) (\(role)): \(error); retrying")
            } else {
                logger.debug("Redis at \(server) unreachable: \(error ?? "?"); retrying")
            }
            scheduleReconnect()
        }
    }
}

private final class ReplyBox {
    let callback: (RedisValue?) -> Void
    let persistent: Bool
    init(_ callback: @escaping (RedisValue?) -> Void, persistent: Bool) {
        self.callback = callback
        self.persistent = persistent
    }
}

private func replyTrampoline(_ r: OpaquePointer?, _ reply: OpaquePointer?, _ privdata: UnsafeMutableRawPointer?) {
    let um = Unmanaged<ReplyBox>.fromOpaque(privdata!)
    let box = um.takeUnretainedValue()
    box.callback(reply.map { RedisValue(reply: $0) })
    if !box.persistent || reply == nil { um.release() }
}

private func stateTrampoline(
    _ r: OpaquePointer?, _ state: Int32, _ err: UnsafePointer<CChar>?, _ ctx: UnsafeMutableRawPointer?
) {
    Unmanaged<AsyncRedis>.fromOpaque(ctx!).takeUnretainedValue().stateChanged(state, err.map { String(cString: $0) })
}
