import CEventShim
import Logging

/// A Redis connection on an `EventLoop` (hiredis async), reconnecting by
/// itself: while it is down, `send` returns false and callers answer 503.
///
///     let redis = AsyncRedis(loop: loop, endpoint: ep, logger: log)
///     redis.send(["LPUSH", "celery", envelope]) { reply in ... }
public final class AsyncRedis {
    public let endpoint: RedisEndpoint
    /// What this connection is for, in log lines ("commands", "pub/sub").
    public let role: String
    private let loop: EventLoop
    private let logger: Logger
    private var handle: OpaquePointer?
    private var retired: [OpaquePointer] = []
    private var reconnectTimer: LoopTimer?
    private var subscriptions: [(channel: String, onMessage: (String) -> Void)] = []
    /// Delay between reconnect attempts.
    public var reconnectDelayMs: UInt64 = 500
    /// Called with true on (re)connect and false when the link drops.
    public var onStateChange: ((Bool) -> Void)?
    public private(set) var isConnected = false

    public init(loop: EventLoop, endpoint: RedisEndpoint, role: String = "commands", logger: Logger) {
        self.loop = loop
        self.endpoint = endpoint
        self.role = role
        self.logger = logger
    }

    /// Begin connecting; returns at once.
    public func start() { connect() }

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
    /// hiredis reads a formatted command as a C string (it scans SUBSCRIBE's arguments up to
    /// a NUL), so `wire` ends with a NUL, which is not sent.
    private func send(resp wire: [UInt8], persistent: Bool = false, _ callback: @escaping (RedisValue?) -> Void)
        -> Bool
    {
        guard isConnected, let h = handle, wire.last == 0 else { return false }
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

    private func connect() {
        for r in retired { ce_redis_free(r) }
        retired.removeAll()
        handle = ce_redis_connect(
            loop.handle, endpoint.host, Int32(endpoint.port), stateTrampoline, Unmanaged.passUnretained(self).toOpaque()
        )
        if handle == nil { scheduleReconnect() }
    }

    private func scheduleReconnect() {
        reconnectTimer = loop.timer(after: reconnectDelayMs) { [weak self] in self?.connect() }
    }

    fileprivate func stateChanged(_ state: Int32, _ error: String?) {
        switch UInt32(state) {
        case CE_REDIS_CONNECTED.rawValue:
            isConnected = true
            for cmd in endpoint.handshake {
                send(cmd) { [logger] r in
                    if let e = r?.errorMessage { logger.error("Redis handshake failed: \(e)") }
                }
            }
            for s in subscriptions { issueSubscribe(channel: s.channel, onMessage: s.onMessage) }
            logger.info("connected to \(endpoint) (\(role))")
            onStateChange?(true)
        default:
            let wasConnected = isConnected
            isConnected = false
            if let h = handle { retired.append(h) }
            handle = nil
            if wasConnected {
                logger.warning("lost Redis at \(endpoint) (\(role)): \(error ?? "closed"); reconnecting")
                onStateChange?(false)
            } else {
                logger.debug("Redis at \(endpoint) unreachable: \(error ?? "?"); retrying")
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
