import CEventShim
import Foundation
import Logging

/// The client's subscriber connection (`ce_pubsub`), on its loop: one SUBSCRIBE per
/// result channel somebody awaits, confirmed before the caller reads the key (so no
/// update falls between the read and the subscription), re-subscribed after a reconnect
/// (each confirmation is reported again, so awaited keys are read again). A channel no
/// one awaits any more is unsubscribed after `idleSeconds` (one awaited again by then is
/// reused). A channel of its own stays subscribed for the connection's life (its SUBSCRIBEs
/// are the barriers: see `barrier`).
///
///     let sub = ResultSubscriber(loop: loop, endpoint: ep, logger: log)
///     sub.onConfirmed = { channel in /* GET the key */ }
///     sub.onMessage = { channel, payload in /* a new record */ }
///     sub.start(); sub.subscribe("celery-task-meta-" + id)
final class ResultSubscriber {
    private enum ChannelState {
        case sent, confirmed
        /// UNSUBSCRIBE sent; `again`: subscribe once its reply came.
        case leaving(again: Bool)
    }

    let endpoint: RedisEndpoint
    private let loop: EventLoop
    private let logger: Logger
    private var handle: OpaquePointer?
    private var retired: [OpaquePointer] = []
    private var channels: [String: ChannelState] = [:]
    /// Channels nobody awaits, since when (loop seconds).
    private var idle: [String: Double] = [:]
    private let ownChannel = "celeris-client-" + TaskMessage.newId()
    private var reconnectTimer: LoopTimer?
    private var hostLookup: HostLookup?
    private var serverLookup: ServerLookup?
    /// The link whose refusal is being handled (its later error replies add nothing).
    private var refusedLink: OpaquePointer?
    private var connectTimer: LoopTimer?
    private var dropTimer: LoopTimer?
    /// The delay before the next reconnect: doubled after each refusal (an error reply), to 5 s.
    private var reconnectDelayMs: UInt64 = 500
    /// Links tried (each attempt after a failure takes the next resolved address).
    private var failedAttempts = -1
    private var sweepTimer: LoopTimer?
    /// Behind sentinels: the last of their announcements this link has looked at (`SentinelAnnouncements`).
    private var sentinelSeen = 0
    private var closed = false
    /// Seconds an unused channel stays subscribed.
    var idleSeconds = 1.0
    /// A link not up within this is dropped and tried again (a blackholed SYN).
    var connectTimeoutMs: UInt64 = 10_000
    /// Why Redis refused the subscriber (an error reply: a missing or wrong password), until
    /// a subscription is confirmed again.
    private(set) var lastError: String?
    /// Connected (its SUBSCRIBEs are sent).
    private(set) var isUp = false
    /// A channel's SUBSCRIBE was confirmed (again, after a reconnect).
    var onConfirmed: (String) -> Void = { _ in }
    /// A message on a subscribed channel.
    var onMessage: (String, [UInt8]) -> Void = { _, _ in }
    /// The connection dropped (channels are subscribed again once it is back).
    var onDown: () -> Void = {}
    /// `barrier` callbacks awaiting their confirmation, oldest first from `barriersHead` (a
    /// deque: a used slot is cleared at once, the array compacted once half of it is used).
    private var barriers: [((Bool) -> Void)?] = []
    private var barriersHead = 0
    /// The connection's first SUBSCRIBE of its own channel is not yet confirmed (it is no barrier).
    private var ownFirstPending = false
    /// The server the current (or last) link goes to: `endpoint`, or one of its failover list.
    private(set) var server: RedisEndpoint

    init(loop: EventLoop, endpoint: RedisEndpoint, logger: Logger) {
        self.loop = loop
        self.endpoint = endpoint
        self.server = endpoint
        self.logger = logger
    }

    func start() {
        connect()
        sweepTimer = loop.timer(after: 250, repeating: true) { [weak self] in self?.sweep() }
    }

    func close() {
        closed = true
        reconnectTimer?.cancel()
        hostLookup?.cancel()
        serverLookup?.cancel()
        connectTimer?.cancel()
        dropTimer?.cancel()
        sweepTimer?.cancel()
        if let h = handle { ce_pubsub_free(h) }
        handle = nil
        for r in retired { ce_pubsub_free(r) }
        retired.removeAll()
        isUp = false
        unconfirmAll()
        failBarriers()
    }

    // The C side holds this object unretained: its link must not outlive it.
    // No `close()` in deinit: the C handle and its libevent events belong to the loop thread, and the last
    // reference may go on another (a free there races the running loop). Owners call `close()` on the loop.

    /// Call `done(true)` once every message published before Redis ran this call's
    /// SUBSCRIBE of the connection's own channel has been reported (`onMessage`), in
    /// the order barriers were asked for; `done(false)` when the link drops first (or is down).
    ///
    ///     redis.send(["GET", key]) { _ in sub.barrier { ok in /* every earlier PUBLISH seen */ } }
    func barrier(_ done: @escaping (Bool) -> Void) {
        guard isUp, let h = handle, ownChannel.withCString({ ce_pubsub_subscribe(h, $0, strlen($0)) }) == 0 else {
            return done(false)
        }
        barriers.append(done)
    }

    /// Every outstanding barrier gets `false` (the link is gone).
    private func failBarriers() {
        guard barriersHead < barriers.count else { return }
        let waiting = barriers[barriersHead...]
        barriers = []
        barriersHead = 0
        for case let done? in waiting { done(false) }
    }

    /// The link is gone: no channel is confirmed until the next link confirms it again
    /// (`subscribe` must not report a confirmation while down).
    private func unconfirmAll() {
        for (channel, state) in channels {
            if case .confirmed = state { channels[channel] = .sent }
        }
    }

    /// The next barrier's callback, its slot cleared (the array compacted when half used).
    private func nextBarrier() -> ((Bool) -> Void)? {
        guard barriersHead < barriers.count else { return nil }
        let done = barriers[barriersHead]
        barriers[barriersHead] = nil
        barriersHead += 1
        if barriersHead == barriers.count {
            barriers.removeAll(keepingCapacity: true)
            barriersHead = 0
        } else if barriersHead >= 64, barriersHead * 2 >= barriers.count {
            barriers.removeFirst(barriersHead)
            barriersHead = 0
        }
        return done
    }

    /// Callbacks of barriers not yet answered (tests: the deque keeps no used one).
    var barriersWaiting: Int { barriers.count - barriersHead }
    /// Slots the barrier deque holds, used or not (tests: compacted as it goes).
    var barrierSlots: Int { barriers.count }

    /// Whether `channel`'s subscription is confirmed on the current connection.
    func isConfirmed(_ channel: String) -> Bool {
        if case .confirmed? = channels[channel] { return true }
        return false
    }

    /// Subscribe (or keep) `channel`; `onConfirmed` reports it (at once when it already is).
    func subscribe(_ channel: String) {
        idle.removeValue(forKey: channel)
        switch channels[channel] {
        case .confirmed?: onConfirmed(channel)
        case .sent?: break
        case .leaving?: channels[channel] = .leaving(again: true)
        case nil:
            channels[channel] = .sent
            send(subscribe: channel)
        }
    }

    /// Nobody awaits `channel` any more: unsubscribed after `idleSeconds`.
    func release(_ channel: String) {
        guard channels[channel] != nil else { return }
        idle[channel] = CeleryTime.now()
    }

    private func sweep() {
        // Behind sentinels: follow the master they announce now, not the one they demote seconds later.
        if isUp, let link = handle, let sentinel = endpoint.sentinel,
            let moved = SentinelAnnouncements.moved(sentinel, from: server, seen: &sentinelSeen, logger: logger)
        {
            logger.warning("client subscriber: the sentinels named \(moved) master; reconnecting")
            isUp = false
            handle = nil
            ce_pubsub_free(link)
            unconfirmAll()
            failBarriers()
            onDown()
            scheduleReconnect()
        }
        guard !idle.isEmpty else { return }
        let now = CeleryTime.now()
        for (channel, since) in idle where now - since >= idleSeconds {
            idle.removeValue(forKey: channel)
            guard isUp, let h = handle else {
                channels.removeValue(forKey: channel)
                continue
            }
            channels[channel] = .leaving(again: false)
            if channel.withCString({ ce_pubsub_unsubscribe(h, $0, strlen($0)) }) != 0 {
                channels.removeValue(forKey: channel)
            }
        }
    }

    private func send(subscribe channel: String) {
        guard isUp, let h = handle else { return }
        _ = channel.withCString { ce_pubsub_subscribe(h, $0, strlen($0)) }
    }

    /// Take the servers to try (a Sentinel endpoint's master is asked of the sentinels off the
    /// loop), pick one (each attempt takes the next of a failover list, from the one that
    /// answered last), resolve its host off the loop (as `AsyncRedis` does; a numeric address
    /// or a unix socket needs no lookup), then open a link to the address.
    private func connect() {
        guard !closed else { return }
        for r in retired { ce_pubsub_free(r) }
        retired.removeAll()
        guard endpoint.sentinel != nil else { return connect(among: endpoint.serversToTry) }
        serverLookup?.cancel()
        serverLookup = ServerLookup(endpoint: endpoint, timeoutMs: 2000, loop: loop) { [weak self] servers, error in
            guard let self, !self.closed else { return }
            guard !servers.isEmpty else {
                self.lastError = error ?? "no Redis server named"
                self.logger.warning("client subscriber: \(self.lastError ?? ""); retrying")
                return self.scheduleReconnect()
            }
            self.connect(among: servers)
        }
    }

    private func connect(among servers: [RedisEndpoint]) {
        guard !closed else { return }
        if servers.count > 1 {
            failedAttempts += 1
            server = servers[failedAttempts % servers.count]
        } else if let only = servers.first {
            server = only  // a Sentinel endpoint's master now
        }
        if server.socketPath != nil || RedisEndpoint.isNumericAddress(server.host) { return open(address: server.host) }
        let round = max(0, failedAttempts) / servers.count
        hostLookup?.cancel()
        hostLookup = HostLookup(host: server.host, loop: loop) { [weak self] addresses in
            guard let self else { return }
            if servers.count == 1 { self.failedAttempts += 1 }
            let index = servers.count == 1 ? self.failedAttempts : round
            if let address = addresses.isEmpty ? nil : addresses[index % addresses.count] {
                self.open(address: address)
            } else {
                self.scheduleReconnect()
            }
        }
    }

    private func open(address: String) {
        guard !closed else { return }
        let context = Unmanaged.passUnretained(self).toOpaque()
        var tlsContext: OpaquePointer?
        if server.socketPath == nil, let tls = server.tls {
            do {
                tlsContext = try TLSContext.shared(for: tls).handle
            } catch {
                // A TLS setting that cannot be used: a failed attempt, never plaintext.
                lastError = "\(error)"
                logger.error("client subscriber at \(server): \(error)")
                return scheduleReconnect()
            }
        }
        handle =
            if let path = server.socketPath {
                ce_pubsub_connect_unix(loop.handle, path, pubsubTrampoline, context)
            } else if let tls = server.tls, let tlsContext {
                ce_pubsub_connect_tls(
                    loop.handle, address, Int32(server.port), tlsContext, tls.serverName ?? server.host,
                    tls.checkHostname ? 1 : 0, pubsubTrampoline, context)
            } else {
                ce_pubsub_connect(loop.handle, address, Int32(server.port), pubsubTrampoline, context)
            }
        guard let h = handle else { return scheduleReconnect() }
        refusedLink = nil
        connectTimer?.cancel()
        connectTimer = loop.timer(after: connectTimeoutMs) { [weak self] in
            guard let self, !self.isUp, let current = self.handle, current == h else { return }
            self.handle = nil
            ce_pubsub_free(current)  // a timer, not a link callback: freed at once
            self.logger.debug("client subscriber: no connection to \(self.server) within \(self.connectTimeoutMs) ms")
            self.scheduleReconnect()
        }
    }

    /// Redis refused the link (an error reply: NOAUTH, WRONGPASS): drop it once out of
    /// the link's callback, and try again later and later.
    private func refused(_ message: String) {
        // One refusal per link: a refused AUTH also fails the PING and SUBSCRIBEs behind it.
        guard let link = handle, link != refusedLink else { return }
        refusedLink = link
        let lower = message.lowercased()
        let auth = lower.contains("auth") || lower.contains("wrongpass") || lower.contains("password")
        lastError = auth ? "authentication failed: \(message)" : "refused: \(message)"
        logger.error("client subscriber at \(server): \(message)")
        dropTimer = loop.timer(after: 0) { [weak self] in
            guard let self, self.handle == link else { return }
            self.isUp = false
            self.handle = nil
            ce_pubsub_free(link)
            self.unconfirmAll()
            self.failBarriers()
            self.onDown()
            self.reconnectDelayMs = min(5000, self.reconnectDelayMs * 2)
            self.scheduleReconnect()
        }
    }

    private func scheduleReconnect() {
        guard !closed else { return }
        reconnectTimer = loop.timer(after: reconnectDelayMs) { [weak self] in self?.connect() }
    }

    fileprivate func event(_ kind: Int32, _ a: String, _ b: [UInt8]) {
        switch UInt32(kind) {
        case CE_PUBSUB_UP.rawValue:
            guard let h = handle else { return }
            connectTimer?.cancel()
            isUp = true
            _ = ce_pubsub_keepalive(h, 15)
            if let pw = server.password {
                _ = pw.withCString { p in
                    if let user = server.username {
                        user.withCString { u in ce_pubsub_auth(h, u, strlen(u), p, strlen(p)) }
                    } else {
                        ce_pubsub_auth(h, nil, 0, p, strlen(p))
                    }
                }
            } else {
                _ = ce_pubsub_ping(h)  // a Redis that wants a password says so here
            }
            ownFirstPending = true
            send(subscribe: ownChannel)
            for (channel, state) in channels {
                if case .leaving(let again) = state, !again {
                    channels.removeValue(forKey: channel)
                    continue
                }
                channels[channel] = .sent
                send(subscribe: channel)
            }
            logger.debug("client subscriber connected to \(server)")
        case CE_PUBSUB_DOWN.rawValue:
            let wasUp = isUp
            isUp = false
            connectTimer?.cancel()
            if let h = handle { retired.append(h) }  // freed out of the link's callback
            handle = nil
            if wasUp {
                logger.warning("client lost Redis at \(server) (pub/sub): \(a); reconnecting")
            } else if a.hasPrefix("TLS") {
                lastError = a
                logger.error("client subscriber at \(server): \(a); retrying")
            }
            unconfirmAll()
            failBarriers()
            onDown()
            scheduleReconnect()
        case CE_PUBSUB_SUBSCRIBED.rawValue:
            if a == ownChannel {
                lastError = nil  // subscribed: not refused
                RedisEndpoint.answered(server, of: endpoint)
                reconnectDelayMs = 500
                if ownFirstPending {
                    ownFirstPending = false
                } else if let done = nextBarrier() {
                    done(true)
                }
                return
            }
            guard case .sent? = channels[a] else { return }
            channels[a] = .confirmed
            onConfirmed(a)
        case CE_PUBSUB_UNSUBSCRIBED.rawValue:
            guard case .leaving(let again)? = channels[a] else { return }
            if again {
                channels[a] = .sent
                send(subscribe: a)
            } else {
                channels.removeValue(forKey: a)
            }
        case CE_PUBSUB_MESSAGE.rawValue:
            onMessage(a, b)
        case CE_PUBSUB_ERROR.rawValue:
            refused(a)
        default:
            break
        }
    }
}

private func pubsubTrampoline(
    _ p: OpaquePointer?, _ kind: Int32, _ a: UnsafePointer<CChar>?, _ alen: Int, _ b: UnsafePointer<CChar>?,
    _ blen: Int, _ ctx: UnsafeMutableRawPointer?
) {
    guard let ctx else { return }
    let first = a.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: alen), as: UTF8.self) } ?? ""
    let second = b.map { Array(UnsafeRawBufferPointer(start: $0, count: blen)) } ?? []
    Unmanaged<ResultSubscriber>.fromOpaque(ctx).takeUnretainedValue().event(kind, first, second)
}
