import CEventShim
import Foundation

/// A blocking Redis connection owned by one thread; commands are pipelined:
/// many are written at once and their replies read in order.
///
///     let redis = try RedisConnection(endpoint: ep)
///     let replies = try redis.pipeline([["SET", "k", "v"], ["GET", "k"]])
public final class RedisConnection {
    private let handle: OpaquePointer
    public let endpoint: RedisEndpoint
    /// The server connected to: `endpoint` itself, or the one of its failover list that answered.
    public let server: RedisEndpoint
    /// The socket's sends and receives go through io_uring (one submission per round trip).
    public let usesUring: Bool
    /// Where commands are encoded before hiredis copies them (kept for its storage).
    private var scratch: [UInt8] = []

    /// Connect and run the endpoint's AUTH/SELECT. `timeoutMs` bounds the connect and
    /// every reply (`readTimeoutMs: 0`: replies may take forever, for a subscriber).
    /// `io`: `.socket` reads and writes the socket; `.uring` moves them to io_uring and
    /// throws where the kernel refuses it; `.auto` takes io_uring when it is allowed.
    /// With a failover list, the servers are tried in turn from the one that answered last;
    /// the first that connects and accepts the handshake is used (`endpoint` is that server).
    /// For links whose answers are short (sentinels): `replyWithinMs` bounds each whole reply,
    /// the handshake's included ("no reply within N ms", where `timeoutMs` bounds each receive
    /// only), and `replyLimitBytes` fails the link when a reply grows past it.
    public init(
        endpoint: RedisEndpoint, timeoutMs: Int = 2000, readTimeoutMs: Int? = nil, io: IOMode = .socket,
        replyWithinMs: Int? = nil, replyLimitBytes: Int? = nil
    ) throws(RedisError) {
        // Behind sentinels: the master they name now, which must say it is the master (an answer
        // given mid-failover may name one just demoted); asked again once when it is not.
        let viaSentinel = endpoint.sentinel != nil
        var failures: [String] = []
        for _ in 0..<(viaSentinel ? 2 : 1) {
            let (servers, lookupError) = endpoint.connectionCandidates(timeoutMs: timeoutMs)
            if servers.isEmpty { throw .connection(lookupError ?? "no server to connect to for \(endpoint)") }
            for server in servers {
                let opened: (OpaquePointer, Bool)
                do throws(RedisError) {
                    opened = try Self.open(server, timeoutMs: timeoutMs, readTimeoutMs: readTimeoutMs, io: io)
                    if let within = replyWithinMs {
                        ce_redis_sync_set_reply_deadline(opened.0, Int32(clamping: within))
                    }
                    if let limit = replyLimitBytes { ce_redis_sync_set_reply_limit(opened.0, max(0, limit)) }
                    do throws(RedisError) {
                        try Self.handshake(opened.0, server)
                        if viaSentinel { try Self.requireMaster(opened.0, server, endpoint) }
                    } catch {
                        ce_redis_sync_free(opened.0)
                        throw error
                    }
                } catch {
                    if case .connection(let m) = error, m.hasPrefix("io_uring unavailable") { throw error }
                    if servers.count == 1 && !viaSentinel { throw error }
                    failures.append("\(server): \(error)")
                    continue
                }
                handle = opened.0
                usesUring = opened.1
                self.endpoint = endpoint
                self.server = server
                RedisEndpoint.answered(server, of: endpoint)
                return
            }
        }
        if viaSentinel {
            throw .connection(
                "no master found through the sentinels of \(endpoint): " + failures.joined(separator: "; "))
        }
        throw .connection("no server of the failover list answered: " + failures.joined(separator: "; "))
    }

    /// `ROLE` on a new handle to a server the sentinels named: anything but `master` throws.
    private static func requireMaster(_ h: OpaquePointer, _ server: RedisEndpoint, _ endpoint: RedisEndpoint)
        throws(RedisError)
    {
        let role = try exchange(h, [["ROLE"]])[0]
        if let error = role.errorMessage { throw .reply(handshakeError(error, server)) }
        let name = role.elements?.first?.text ?? "unknown"
        guard name == "master" else {
            throw .connection(
                "\(server), named by the sentinels as master \(endpoint.sentinel?.masterName ?? ""), says ROLE \(name)")
        }
    }

    /// Run `server`'s AUTH/SELECT on a new handle; a refusal throws `.reply`.
    private static func handshake(_ h: OpaquePointer, _ server: RedisEndpoint) throws(RedisError) {
        let commands = server.handshake
        guard !commands.isEmpty else { return }
        for reply in try exchange(h, commands) {
            if let error = reply.errorMessage { throw .reply(handshakeError(error, server)) }
        }
    }

    /// Send `commands` on a new handle (before it is wrapped) and read their replies in order;
    /// a failed write or read throws `.connection` with the link's error text.
    private static func exchange(_ h: OpaquePointer, _ commands: [[String]]) throws(RedisError) -> [RedisValue] {
        var wire: [UInt8] = []
        for c in commands { RESP.append(c, to: &wire) }
        let rc = wire.withUnsafeBufferPointer { b in
            ce_redis_sync_append_formatted(
                h, UnsafeRawPointer(b.baseAddress!).assumingMemoryBound(to: CChar.self), b.count)
        }
        if rc != 0 { throw .connection(String(cString: ce_redis_sync_error(h))) }
        return try commands.map { _ throws(RedisError) in
            var reply: OpaquePointer?
            guard ce_redis_sync_read(h, &reply) == 0, let r = reply else {
                throw .connection(String(cString: ce_redis_sync_error(h)))
            }
            defer { ce_redis_sync_release(h, r) }
            return RedisValue(reply: r)
        }
    }

    /// A connected handle to one server (no handshake yet).
    private static func open(_ server: RedisEndpoint, timeoutMs: Int, readTimeoutMs: Int?, io: IOMode)
        throws(RedisError) -> (OpaquePointer, usesUring: Bool)
    {
        if server.tls != nil, let path = server.socketPath {
            throw .connection("TLS over a unix socket (\(path)) is not supported: use redis:// for a unix socket")
        }
        var err = [CChar](repeating: 0, count: 256)
        let connected =
            if let path = server.socketPath {
                ce_redis_sync_connect_unix(path, Int32(timeoutMs), &err, err.count)
            } else {
                ce_redis_sync_connect(server.host, Int32(server.port), Int32(timeoutMs), &err, err.count)
            }
        guard let h = connected else { throw .connection(cText(err)) }
        if let tls = server.tls {
            do throws(RedisError) { try startTLS(h, tls, server, timeoutMs: timeoutMs) } catch {
                ce_redis_sync_free(h)
                throw error
            }
        }
        _ = ce_redis_sync_set_timeout(h, Int32(readTimeoutMs ?? timeoutMs))
        let refused = io == .socket ? 0 : ce_redis_sync_use_uring(h)
        if io == .uring && refused != 0 {
            ce_redis_sync_free(h)
            throw .connection("io_uring unavailable: \(String(cString: strerror(refused))) (use --io auto or socket)")
        }
        return (h, io != .socket && refused == 0)
    }

    /// Encrypt a fresh handle: the TLS handshake, then one PING (any reply will do) so that a
    /// server refusing the client's certificate after a TLS 1.3 handshake is caught here too.
    /// Never falls back to plaintext.
    private static func startTLS(_ h: OpaquePointer, _ tls: RedisTLS, _ server: RedisEndpoint, timeoutMs: Int)
        throws(RedisError)
    {
        let context = try TLSContext.shared(for: tls)
        let name = tls.serverName ?? server.host
        let check: Int32 = tls.verifies && tls.checkHostname ? 1 : 0
        var err = [CChar](repeating: 0, count: 512)
        let failed: String?
        if ce_redis_sync_start_tls(h, context.handle, name, check, &err, err.count) != 0 {
            failed = cText(err)
        } else {
            do throws(RedisError) {
                _ = try exchange(h, [["PING"]])
                failed = nil
            } catch {
                failed = String(cString: ce_redis_sync_error(h))
            }
        }
        guard var why = failed else { return }
        if why.contains("Resource temporarily unavailable") {
            why = "no TLS answer within \(timeoutMs) ms (is the server speaking TLS on port \(server.port)?)"
        } else if why.contains("wrong version number") || why.contains("packet length too long") {
            why += " (the server answered in plaintext: is it a TLS port?)"
        }
        throw .connection("TLS handshake with \(server.host):\(server.port) failed: \(why)")
    }

    private static func cText(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A refused handshake in words a user acts on (a wrong password, a user without a right).
    static func handshakeError(_ message: String, _ server: RedisEndpoint) -> String {
        let lower = message.lowercased()
        if lower.hasPrefix("wrongpass") || lower.contains("invalid password") || lower.contains("invalid username") {
            let who = server.username.map { "user \($0)" } ?? "the default user"
            return "authentication failed at \(server) for \(who): \(message)"
        }
        if lower.hasPrefix("noperm") {
            return "Redis at \(server) refused a command to \(server.username ?? "default"): \(message)"
        }
        return message
    }

    deinit { ce_redis_sync_free(handle) }

    /// The socket, to wait for a reply with `Outbox.take(waitingUpTo:watching:readable:)`
    /// (meaningful with one command outstanding: earlier replies may sit in the read buffer).
    public var socket: Int32 { ce_redis_sync_fd(handle) }

    /// Bytes already received wait to be parsed (plaintext, or TLS records not yet decrypted):
    /// a reply may be ready without `socket` becoming readable; look before waiting on it.
    public var hasBufferedInput: Bool { ce_redis_sync_buffered(handle) != 0 }

    /// Queue a command without waiting.
    public func append(_ args: [String]) throws(RedisError) { try append([args]) }

    /// Queue commands without waiting: encoded as RESP here and handed to hiredis in one call.
    public func append(_ commands: [[String]]) throws(RedisError) {
        scratch.removeAll(keepingCapacity: true)
        for c in commands { RESP.append(c, to: &scratch) }
        try append(resp: scratch)
    }

    /// Queue one command given in parts (`name`, then each of `parts` in turn), encoded
    /// without an array of its arguments being built: a claim's EVALSHA each loop turn.
    ///
    ///     try redis.append("EVALSHA", [sha, "2"], keys, CollectionOfOne("10"))
    func append(
        _ name: StaticString, _ first: some Collection<String>, _ second: some Collection<String>,
        _ third: some Collection<String>
    ) throws(RedisError) {
        scratch.removeAll(keepingCapacity: true)
        RESP.appendCount(1 + first.count + second.count + third.count, to: &scratch)
        RESP.appendBulk(name, to: &scratch)
        RESP.appendBulks(first, to: &scratch)
        RESP.appendBulks(second, to: &scratch)
        RESP.appendBulks(third, to: &scratch)
        try append(resp: scratch)
    }

    /// Queue commands already encoded as RESP, without waiting.
    public func append(resp wire: [UInt8]) throws(RedisError) {
        guard !wire.isEmpty else { return }
        let rc = wire.withUnsafeBufferPointer { b in
            ce_redis_sync_append_formatted(
                handle, UnsafeRawPointer(b.baseAddress!).assumingMemoryBound(to: CChar.self), b.count)
        }
        if rc != 0 { throw .connection(errorText) }
    }

    /// Write every queued command now, without waiting for replies (`read` them later, in order).
    public func flush() throws(RedisError) {
        if ce_redis_sync_flush(handle) != 0 { throw .connection(errorText) }
    }

    /// Read the next reply (flushes queued commands first).
    public func read() throws(RedisError) -> RedisValue {
        try read { RedisValue(reply: $0.pointer) }
    }

    /// Read the next reply and let `body` look at it where hiredis parsed it (the
    /// view is valid only during the call): nothing is copied that `body` does not take.
    public func read<T>(_ body: (RedisReply) throws(RedisError) -> T) throws(RedisError) -> T {
        var reply: OpaquePointer?
        guard ce_redis_sync_read(handle, &reply) == 0, let r = reply else { throw .connection(errorText) }
        defer { ce_redis_sync_release(handle, r) }
        return try body(RedisReply(pointer: r))
    }

    /// Read the next reply and return the error messages in it, an EXEC's nested ones
    /// too; for writes whose only answer that matters is whether something failed.
    public func readErrors() throws(RedisError) -> [String] {
        try read { $0.errors }
    }

    /// Send all commands in one write and read all replies.
    public func pipeline(_ commands: [[String]]) throws(RedisError) -> [RedisValue] {
        try append(commands)
        var out: [RedisValue] = []
        out.reserveCapacity(commands.count)
        for _ in commands { out.append(try read()) }
        return out
    }

    /// Send one command and return its reply; a Redis error reply throws.
    @discardableResult
    public func command(_ args: String...) throws(RedisError) -> RedisValue {
        try append(args)
        let r = try read()
        if let e = r.errorMessage { throw .reply(e) }
        return r
    }

    private var errorText: String { String(cString: ce_redis_sync_error(handle)) }
}
