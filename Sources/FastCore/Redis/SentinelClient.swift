import Foundation
import Glibc
import Logging

/// Asks Redis Sentinel where a master is: `SENTINEL GET-MASTER-ADDR-BY-NAME` to each sentinel
/// in turn (plain TCP, with `AUTH [sentinel_username] sentinel_password` when set); the first
/// that names the master is asked first next time (as kombu and redis-py do).
///
///     if let s = endpoint.sentinel { let address = try SentinelClient.master(of: s, timeoutMs: 2000).get() }
enum SentinelClient {
    /// Where the sentinels say the master is.
    struct Address: Equatable, Sendable {
        var host: String
        var port: Int
    }

    /// Why no master was found: what each sentinel said.
    struct LookupFailure: Error, CustomStringConvertible {
        let description: String
    }

    /// The index of the sentinel that answered last, by the list it belongs to.
    private static let lastAnswered = LockedBox<[String: Int]>([:])

    /// The sentinels of `sentinel` in the order they are asked: from the one that answered last.
    static func order(_ sentinel: RedisSentinel) -> [RedisEndpoint] {
        let all = sentinel.sentinels
        guard all.count > 1 else { return all }
        let start = (lastAnswered.get()[key(sentinel)] ?? 0) % all.count
        return Array(all[start...] + all[..<start])
    }

    static func key(_ sentinel: RedisSentinel) -> String {
        sentinel.masterName + "@" + sentinel.sentinels.map { "\($0.host):\($0.port)" }.joined(separator: ",")
    }

    /// The sentinel endpoint to connect to: its host and port, with the sentinel auth.
    static func endpoint(_ s: RedisEndpoint, of sentinel: RedisSentinel) -> RedisEndpoint {
        RedisEndpoint(host: s.host, port: s.port, password: sentinel.password, username: sentinel.username)
    }

    /// The most a sentinel's reply may weigh: its answers are two short strings or a short
    /// pub/sub message; a sentinel streaming more is broken or hostile.
    static let replyLimitBytes = 64 * 1024

    /// A link to one sentinel (plain socket I/O): each reply must arrive whole within `timeoutMs`
    /// and weigh at most `replyLimitBytes`, so a sentinel trickling or flooding an answer fails
    /// like a silent one and the next is asked.
    static func link(_ s: RedisEndpoint, of sentinel: RedisSentinel, timeoutMs: Int) throws(RedisError)
        -> RedisConnection
    {
        try RedisConnection(
            endpoint: endpoint(s, of: sentinel), timeoutMs: timeoutMs, io: .socket, replyWithinMs: timeoutMs,
            replyLimitBytes: replyLimitBytes)
    }

    /// Blocking: ask each sentinel in turn, each reply whole within `timeoutMs`.
    static func master(of sentinel: RedisSentinel, timeoutMs: Int) -> Result<Address, LookupFailure> {
        var said: [String] = []
        for s in order(sentinel) {
            let where_ = "\(s.host.contains(":") ? "[\(s.host)]" : s.host):\(s.port)"
            do throws(RedisError) {
                let r = try link(s, of: sentinel, timeoutMs: timeoutMs)
                let reply = try r.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", sentinel.masterName)
                guard let parts = reply.elements, parts.count == 2, let host = parts[0].text, !host.isEmpty,
                    let portText = parts[1].text, let port = Int(portText), port > 0, port < 65536
                else {
                    said.append("\(where_): no such master")
                    continue
                }
                if let i = sentinel.sentinels.firstIndex(of: s) {
                    lastAnswered.modify { $0[key(sentinel)] = i }
                }
                return .success(Address(host: host, port: port))
            } catch {
                said.append("\(where_): \(sentinelError(error, sentinel))")
            }
        }
        let list = sentinel.sentinels.map { "\($0.host):\($0.port)" }.joined(separator: ", ")
        return .failure(
            LookupFailure(
                description: "no sentinel of [\(list)] knows master \(sentinel.masterName): "
                    + said.joined(separator: "; ")))
    }

    /// A sentinel's refusal in words a user acts on (the sentinel auth is its own).
    private static func sentinelError(_ error: RedisError, _ sentinel: RedisSentinel) -> String {
        switch error {
        case .connection(let m): return m
        case .reply(let m):
            let lower = m.lowercased()
            if lower.hasPrefix("noauth") {
                return "the sentinel needs a password (sentinel_password=…): \(m)"
            }
            if lower.contains("wrongpass") || lower.contains("invalid password")
                || lower.contains("authentication failed")
            {
                return "sentinel authentication failed (sentinel_password): \(m)"
            }
            return m
        }
    }

    /// True when `ROLE` on `r` says master (a sentinel's answer may be stale mid-failover).
    static func isMaster(_ r: RedisConnection) throws(RedisError) -> Bool {
        let reply = try r.command("ROLE")
        return reply.elements?.first?.text == "master"
    }
}

extension RedisSentinel {
    /// The sentinels in the order the next lookup asks them: from the one that answered last.
    public var askingOrder: [RedisEndpoint] { SentinelClient.order(self) }
}

/// Follows the sentinels' `+switch-master` announcements for one master: one subscribed link at
/// a time (to the first sentinel that answers, in `askingOrder`), pinged every second so a dead
/// sentinel is noticed and the next one taken. `moved` runs on the watch's thread with the
/// master's address: once after each (re)subscription (a switch missed meanwhile), then for each
/// switch. A link to the old master stays writable until the sentinels demote it (seconds after
/// a `SENTINEL FAILOVER`); a client that moves on the announcement writes nothing there meanwhile.
///
///     let watch = SentinelWatch(sentinel: s, logger: log) { address in flag.set(address); outbox.wake() }
///     watch.stop()
final class SentinelWatch: Sendable {
    private let stopped = LockedBox(false)

    init(sentinel: RedisSentinel, logger: Logger, moved: @escaping @Sendable (SentinelClient.Address) -> Void) {
        let stopped = self.stopped
        let thread = Thread {
            while !stopped.get() {
                SentinelWatch.follow(sentinel, stopped: stopped, logger: logger, moved: moved)
                if !stopped.get() { Thread.sleep(forTimeInterval: 0.5) }  // a pause before trying the sentinels again
            }
        }
        thread.name = "celeris-sentinel-watch"
        thread.start()
    }

    /// End the watch (within a second).
    func stop() { stopped.set(true) }

    /// Subscribe on the first sentinel that takes it and pass on its announcements until the link
    /// fails or the watch stops.
    private static func follow(
        _ sentinel: RedisSentinel, stopped: LockedBox<Bool>, logger: Logger,
        moved: @Sendable (SentinelClient.Address) -> Void
    ) {
        for s in SentinelClient.order(sentinel) {
            if stopped.get() { return }
            let r: RedisConnection
            do throws(RedisError) {
                r = try SentinelClient.link(s, of: sentinel, timeoutMs: 2000)
                try r.append(["SUBSCRIBE", "+switch-master"])
                _ = try r.read()
            } catch {
                logger.debug("sentinel watch: \(s.host):\(s.port): \(error)")
                continue
            }
            if case .success(let address) = SentinelClient.master(of: sentinel, timeoutMs: 2000) { moved(address) }
            do throws(RedisError) {
                while !stopped.get() {
                    var fd = pollfd(fd: r.socket, events: Int16(POLLIN), revents: 0)
                    // Anything that arrived is read behind a PING's answer: no message waits in a buffer.
                    if poll(&fd, 1, 1000) == 0 { try r.append(["PING"]) }
                    while true {
                        let message = try r.read()
                        guard let parts = message.elements, let kind = parts.first?.text else { continue }
                        if kind == "pong" { break }
                        if kind == "message", parts.count == 3, let text = parts[2].text,
                            let address = switchedMaster(text, name: sentinel.masterName)
                        {
                            logger.warning(
                                "the sentinels moved master \(sentinel.masterName) to \(address.host):\(address.port)")
                            moved(address)
                        }
                        if kind == "message" { break }
                    }
                }
            } catch {
                logger.debug("sentinel watch: \(s.host):\(s.port): \(error)")
                continue
            }
            return
        }
    }

    /// The new address in a `+switch-master` message (`<name> <old ip> <old port> <new ip> <new port>`) for `name`.
    static func switchedMaster(_ text: String, name: String) -> SentinelClient.Address? {
        let parts = text.split(separator: " ")
        guard parts.count == 5, parts[0] == name, let port = Int(parts[4]), port > 0, port < 65536 else { return nil }
        return SentinelClient.Address(host: String(parts[3]), port: port)
    }
}

/// The sentinels' announcements for links that poll (an event loop's timer): one `SentinelWatch`
/// per sentinel set in the process, started on first use and kept for the process's life.
///
///     // on a timer, while connected to `server`:
///     if let moved = SentinelAnnouncements.moved(sentinel, from: server, seen: &generation, logger: log) { drop(…) }
public enum SentinelAnnouncements {
    private struct Entry: Sendable {
        var watch: SentinelWatch?
        var generation = 0
        var address: SentinelClient.Address?
    }
    private static let entries = LockedBox<[String: Entry]>([:])

    /// The master the sentinels named since `seen` (the generation this link saw last, updated
    /// here), as `host:port`, when it is not `server`; nil otherwise. Starts the watch on first use.
    public static func moved(_ sentinel: RedisSentinel, from server: RedisEndpoint, seen: inout Int, logger: Logger)
        -> String?
    {
        let key = SentinelClient.key(sentinel)
        let entry = entries.modify { all -> Entry in
            if all[key] == nil {
                all[key] = Entry()
                all[key]?.watch = SentinelWatch(sentinel: sentinel, logger: logger) { address in
                    entries.modify {
                        $0[key]?.generation += 1
                        $0[key]?.address = address
                    }
                }
            }
            return all[key] ?? Entry()
        }
        guard entry.generation > seen, let address = entry.address else { return nil }
        seen = entry.generation
        guard address.host != server.host || address.port != server.port else { return nil }
        return "\(address.host):\(address.port)"
    }
}
