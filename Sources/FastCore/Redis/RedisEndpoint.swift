import Foundation
import Glibc

/// Where Redis is, as a Celery broker URL names it (kombu's forms):
/// `redis://[user[:password]@]host[:port][/db]` (an ACL user: `AUTH user password`; a password
/// alone, `redis://:password@host`: `AUTH password`; both percent-decoded),
/// `unix:///path/to/redis.sock[?db=N]` (also `redis+socket://`), a `;`-separated failover list
/// (`redis://a:6379;redis://b:6379`: the first server that answers, the next when a link drops),
/// TLS (`rediss://host:6380/0?ssl_cert_reqs=required&ssl_ca_certs=/etc/ca.pem`, redis-py's option
/// names) and Redis Sentinel (`sentinel://s1:26379;sentinel://s2:26379?master_name=mymaster`: the
/// master the sentinels name, followed through a failover).
///
///     let ep = try RedisEndpoint(url: "redis://celeris:s3cret@10.0.0.5:6379/0")
public struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var db: Int
    public var password: String?
    /// The ACL user (`AUTH username password`); nil: the default user (`AUTH password`).
    public var username: String?
    /// A unix socket to connect to instead of `host:port`.
    public var socketPath: String?
    /// Servers to try after this one (the rest of a `;` failover list), each without a list of its own.
    public var failover: [RedisEndpoint]
    /// TLS for the link (`rediss://`); nil: plain TCP.
    public var tls: RedisTLS?
    /// Set for a `sentinel://` URL: the master is the one these sentinels name (then `host` and `port`
    /// are the first sentinel's, and `username`, `password`, `db` and `tls` are the master's).
    public var sentinel: RedisSentinel?

    public init(
        host: String = "127.0.0.1", port: Int = 6379, db: Int = 0, password: String? = nil, username: String? = nil,
        socketPath: String? = nil, failover: [RedisEndpoint] = [], tls: RedisTLS? = nil, sentinel: RedisSentinel? = nil
    ) {
        self.host = host
        self.port = port
        self.db = db
        self.password = password
        self.username = username
        self.socketPath = socketPath
        self.failover = failover
        self.tls = tls
        self.sentinel = sentinel
    }

    /// A broker URL Celeris cannot use; `description` says why (a password in it is masked).
    public struct InvalidURL: Error, CustomStringConvertible {
        /// The URL, with any password replaced by `**`.
        public let url: String
        /// What is wrong with it.
        public let reason: String
        public init(url: String, reason: String = "expected redis://[user[:password]@]host[:port][/db]") {
            self.url = RedisEndpoint.masked(url)
            self.reason = reason
        }
        public var description: String { "invalid broker URL \(url): \(reason)" }
    }

    /// Parse a broker URL (one server, or a `;` failover list of them).
    public init(url: String) throws(InvalidURL) {
        let parts = url.split(separator: ";", omittingEmptySubsequences: false).map {
            $0.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed()
        }.map { String($0) }
        guard parts.count <= 16 else { throw InvalidURL(url: url, reason: "more than 16 servers in a failover list") }
        var servers: [RedisEndpoint] = []
        for part in parts {
            if part.isEmpty {
                if parts.count > 1 { continue }  // a trailing ';'
                throw InvalidURL(url: url, reason: "empty URL")
            }
            servers.append(try Self.server(String(part)))
        }
        guard var first = servers.first else { throw InvalidURL(url: url, reason: "empty URL") }
        if servers.contains(where: { $0.sentinel != nil }) {
            self = try Self.sentinelList(servers, url)
            return
        }
        if let other = servers.first(where: { $0.db != first.db }) {
            throw InvalidURL(
                url: url,
                reason: "every server of a failover list must use the same db (\(first.db) and \(other.db))")
        }
        first.failover = Array(servers.dropFirst())
        self = first
    }

    /// The parts of a `sentinel://` list as one endpoint: the sentinels, and the master's auth and db.
    private static func sentinelList(_ parts: [RedisEndpoint], _ url: String) throws(InvalidURL) -> RedisEndpoint {
        guard parts.allSatisfy({ $0.sentinel != nil }) else {
            throw InvalidURL(url: url, reason: "a list mixes sentinel:// with other schemes")
        }
        let names = Set(parts.compactMap { $0.sentinel?.masterName }.filter { !$0.isEmpty })
        guard names.count <= 1 else { throw InvalidURL(url: url, reason: "more than one master_name in the list") }
        // The db may be written on one sentinel's part only (the others then read 0).
        let dbs = Set(parts.map(\.db).filter { $0 != 0 })
        guard dbs.count <= 1 else {
            throw InvalidURL(url: url, reason: "the sentinels' parts name different dbs (\(dbs.sorted()))")
        }
        var master = parts[0]
        master.db = dbs.first ?? 0
        master.username = parts.lazy.compactMap(\.username).first
        master.password = parts.lazy.compactMap(\.password).first
        master.tls = parts.lazy.compactMap(\.tls).first
        let auth = parts.lazy.compactMap(\.sentinel).first { $0.password != nil }
        // kombu's transport option master_name; Celeris also takes it from the environment.
        let environment = ProcessInfo.processInfo.environment["CELERIS_BROKER_MASTER_NAME"] ?? ""
        guard let name = names.first ?? (environment.isEmpty ? nil : environment) else {
            throw InvalidURL(
                url: url,
                reason:
                    "a sentinel:// URL needs the master's name: ?master_name=mymaster (or $CELERIS_BROKER_MASTER_NAME)")
        }
        master.sentinel = RedisSentinel(
            masterName: name,
            sentinels: parts.map { RedisEndpoint(host: $0.host, port: $0.port) },
            username: auth?.username, password: auth?.password)
        return master
    }

    /// One server's URL.
    private static func server(_ url: String) throws(InvalidURL) -> RedisEndpoint {
        guard let schemeEnd = url.range(of: "://") else { throw InvalidURL(url: url) }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        var rest = Substring(url[schemeEnd.upperBound...])
        switch scheme {
        case "redis", "rediss", "sentinel", "unix", "redis+socket", "socket": break
        default:
            throw InvalidURL(
                url: url,
                reason:
                    "unknown scheme \(scheme)://: expected redis://, rediss://, sentinel://, unix:// or redis+socket://"
            )
        }
        guard !url.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw InvalidURL(url: url, reason: "control characters in the URL")
        }
        var ep = RedisEndpoint()
        if scheme == "sentinel" {
            ep.port = 26379
            ep.sentinel = RedisSentinel(masterName: "", sentinels: [])
        }
        if scheme == "rediss" { ep.tls = RedisTLS() }
        // The query: db / virtual_host, password, username.
        var query: [(String, String)] = []
        if let q = rest.firstIndex(of: "?") {
            for item in rest[rest.index(after: q)...].split(separator: "&") {
                let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard let key = decode(kv[0]), let value = decode(kv.count > 1 ? kv[1] : "") else {
                    throw InvalidURL(url: url, reason: "bad percent-encoding in the query")
                }
                query.append((key, value))
            }
            rest = rest[..<q]
        }
        if rest.contains("#") { throw InvalidURL(url: url, reason: "a fragment (#) has no meaning here") }
        // User information: everything before the last '@' (a password may hold '@' percent-encoded or not).
        let local = !["redis", "rediss", "sentinel"].contains(scheme)
        let userEnd: Substring.Index?
        if local {
            // unix://[user[:password]@]/path: the '@' comes before the path's first '/'.
            userEnd = rest.firstIndex(of: "/").flatMap { slash in rest[..<slash].lastIndex(of: "@") }
        } else {
            let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
            userEnd = rest[..<authorityEnd].lastIndex(of: "@") ?? rest.lastIndex(of: "@")
        }
        if let at = userEnd {
            let info = rest[..<at]
            rest = rest[rest.index(after: at)...]
            let pair = info.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard let user = decode(pair[0]), let pass = decode(pair.count > 1 ? pair[1] : "") else {
                throw InvalidURL(url: url, reason: "bad percent-encoding in the user or password")
            }
            if pair.count > 1 {
                ep.username = user.isEmpty ? nil : user
                ep.password = pass.isEmpty ? nil : pass
            } else {
                // redis://secret@host: redis-py and kombu read a lone word as the password.
                ep.password = user.isEmpty ? nil : user
            }
        }
        if local {
            guard let path = decode(rest), path.hasPrefix("/"), path.count > 1 else {
                throw InvalidURL(url: url, reason: "expected \(scheme):///path/to/redis.sock[?db=N]")
            }
            guard path.utf8.count < 108 else {
                throw InvalidURL(url: url, reason: "socket path longer than 107 bytes")
            }
            ep.socketPath = path
            ep.host = "localhost"
            ep.port = 0
        } else {
            if let slash = rest.firstIndex(of: "/") {
                let dbText = rest[rest.index(after: slash)...]
                if !dbText.isEmpty {
                    guard let d = Int(dbText), d >= 0, d < 1 << 16, dbText.allSatisfy(\.isASCII) else {
                        throw InvalidURL(url: url, reason: "db must be a number (0, 1, …), not \(dbText)")
                    }
                    ep.db = d
                }
                rest = rest[..<slash]
            }
            if rest.hasPrefix("[") {
                guard let close = rest.firstIndex(of: "]") else {
                    throw InvalidURL(url: url, reason: "unclosed [ in an IPv6 address")
                }
                let address = rest[rest.index(after: rest.startIndex)..<close]
                let after = rest[rest.index(after: close)...]
                guard after.isEmpty || after.hasPrefix(":") else {
                    throw InvalidURL(url: url, reason: "expected :port after ]")
                }
                if after.hasPrefix(":") { ep.port = try port(after.dropFirst(), url) }
                guard isNumericAddress(String(address)) else {
                    throw InvalidURL(url: url, reason: "not an IPv6 address: [\(address)]")
                }
                ep.host = String(address)
            } else {
                if let colon = rest.lastIndex(of: ":") {
                    ep.port = try port(rest[rest.index(after: colon)...], url)
                    rest = rest[..<colon]
                }
                guard !rest.contains(":") else {
                    throw InvalidURL(url: url, reason: "an IPv6 address goes in brackets: redis://[::1]:6379")
                }
                guard
                    rest.allSatisfy({
                        $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_")
                    })
                else { throw InvalidURL(url: url, reason: "not a host name: \(rest)") }
                if !rest.isEmpty { ep.host = String(rest) }
            }
        }
        for (key, value) in query {
            switch key {
            case "db", "virtual_host":
                guard let d = Int(value), d >= 0, d < 1 << 16 else {
                    throw InvalidURL(url: url, reason: "\(key) must be a number, not \(value)")
                }
                ep.db = d
            case "password": ep.password = value.isEmpty ? nil : value
            case "username": ep.username = value.isEmpty ? nil : value
            case "master_name" where ep.sentinel != nil: ep.sentinel?.masterName = value
            case "sentinel_password" where ep.sentinel != nil: ep.sentinel?.password = value.isEmpty ? nil : value
            case "sentinel_username" where ep.sentinel != nil: ep.sentinel?.username = value.isEmpty ? nil : value
            case "ssl" where ep.sentinel != nil:
                // sentinel://…?ssl=true: the master speaks TLS (the sentinels themselves plain TCP).
                guard let on = RedisTLS.flag(value) else {
                    throw InvalidURL(url: url, reason: "\(key) must be true or false, not \(value)")
                }
                if on && ep.tls == nil { ep.tls = RedisTLS() }
                if !on { ep.tls = nil }
            case _ where key.hasPrefix("ssl_"):
                if ep.tls == nil, ep.sentinel != nil { ep.tls = RedisTLS() }
                guard ep.tls != nil else {
                    throw InvalidURL(url: url, reason: "\(key) is a TLS option: use rediss:// for TLS")
                }
                try ep.tls?.set(key, value, url: url)
            default:
                throw InvalidURL(
                    url: url,
                    reason: "unknown option \(key) (Celeris reads db, virtual_host, password, username, ssl_* with "
                        + "rediss://, master_name, sentinel_password and sentinel_username with sentinel://)")
            }
        }
        if let s = ep.sentinel, s.username != nil, s.password == nil {
            throw InvalidURL(url: url, reason: "sentinel_username needs a sentinel_password")
        }
        if ep.username != nil && ep.password == nil {
            throw InvalidURL(url: url, reason: "user \(ep.username ?? "") has no password (redis://user:password@host)")
        }
        return ep
    }

    private static func port(_ text: Substring, _ url: String) throws(InvalidURL) -> Int {
        if text.isEmpty { return 6379 }
        guard text.allSatisfy(\.isASCII), let p = Int(text), p > 0, p < 65536 else {
            throw InvalidURL(url: url, reason: "port must be 1-65535, not \(text)")
        }
        return p
    }

    /// Percent-decoding (`%40` → `@`); nil when a `%` is not followed by two hex digits or the bytes are not UTF-8.
    static func decode(_ text: Substring) -> String? {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var it = Array(text.utf8)[...]
        while let b = it.popFirst() {
            if b != UInt8(ascii: "%") {
                bytes.append(b)
                continue
            }
            guard let h = it.popFirst().flatMap(hex), let l = it.popFirst().flatMap(hex) else { return nil }
            bytes.append(h << 4 | l)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// `url` with the password of each server replaced by `**` (for messages and logs).
    static func masked(_ url: String) -> String {
        url.split(separator: ";", omittingEmptySubsequences: false).map { part -> String in
            guard let s = part.range(of: "://") else { return String(part) }
            let after = part[s.upperBound...]
            let end = after.firstIndex(of: "/") ?? after.endIndex
            guard let at = after[..<end].lastIndex(of: "@") ?? after.lastIndex(of: "@"),
                let colon = after[..<at].firstIndex(of: ":")
            else { return String(part) }
            return String(part[..<after.index(after: colon)]) + "**" + String(after[at...])
        }.joined(separator: ";")
    }

    /// This server and its failover list, in the order they are tried.
    public var servers: [RedisEndpoint] {
        var this = self
        this.failover = []
        return [this] + failover
    }

    /// Which server of each failover list answered last (by the list's description).
    private static let lastAnswered = LockedBox<[String: Int]>([:])

    /// The servers in the order a new connection tries them: from the one that answered last.
    public var serversToTry: [RedisEndpoint] {
        let all = servers
        guard all.count > 1 else { return all }
        let start = Self.lastAnswered.get()[description] ?? 0
        return Array(all[(start % all.count)...] + all[..<(start % all.count)])
    }

    /// `server` of `list` answered: new connections try it first.
    public static func answered(_ server: RedisEndpoint, of list: RedisEndpoint) {
        guard !list.failover.isEmpty, let i = list.servers.firstIndex(of: server) else { return }
        lastAnswered.modify { $0[list.description] = i }
    }

    /// The URL without its password: `redis://user@host:port/db`, `unix:///path?db=N`, `;` between servers.
    public var description: String {
        if let sentinel {
            let user = username.map { "\($0)@" } ?? ""
            let list = sentinel.sentinels.map { s in
                "sentinel://\(user)\(s.host.contains(":") ? "[\(s.host)]" : s.host):\(s.port)/\(db)"
            }
            return list.joined(separator: ";") + "?master_name=\(sentinel.masterName)" + (tls == nil ? "" : "&ssl=true")
        }
        return servers.map { s in
            if let path = s.socketPath { return "unix://\(path)?db=\(s.db)" }
            let user = s.username.map { "\($0)@" } ?? ""
            let host = s.host.contains(":") ? "[\(s.host)]" : s.host
            return "\(s.tls == nil ? "redis" : "rediss")://\(user)\(host):\(s.port)/\(s.db)"
        }.joined(separator: ";")
    }

    /// The broker named by a `-b/--broker` flag, else `$CELERIS_BROKER_URL`, else local Redis.
    public static func broker(flag: String?, environment: [String: String]) throws(InvalidURL) -> RedisEndpoint {
        try RedisEndpoint(url: flag ?? environment["CELERIS_BROKER_URL"] ?? "redis://127.0.0.1:6379/0")
    }

    /// True when `host` is an IPv4 or IPv6 address (connecting needs no name lookup).
    public static func isNumericAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// Every TCP address of `host` as text, in the resolver's order (empty when it has none).
    /// Blocks on DNS: call it off the event loop.
    public static func resolve(host: String) -> [String] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0 else { return [] }
        defer { freeaddrinfo(list) }
        var addresses: [String] = []
        var next = list
        while let entry = next {
            next = entry.pointee.ai_next
            guard let address = entry.pointee.ai_addr else { continue }
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            let ok: Bool
            switch entry.pointee.ai_family {
            case AF_INET:
                ok = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    var a = $0.pointee.sin_addr
                    return inet_ntop(AF_INET, &a, &text, socklen_t(text.count)) != nil
                }
            case AF_INET6:
                ok = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    var a = $0.pointee.sin6_addr
                    return inet_ntop(AF_INET6, &a, &text, socklen_t(text.count)) != nil
                }
            default:
                ok = false
            }
            let string = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if ok, !addresses.contains(string) { addresses.append(string) }
        }
        return addresses
    }

    /// Commands to run on every new connection: `AUTH [user] password`, `SELECT db`.
    public var handshake: [[String]] {
        var cmds: [[String]] = []
        if let password { cmds.append(username.map { ["AUTH", $0, password] } ?? ["AUTH", password]) }
        if db != 0 { cmds.append(["SELECT", String(db)]) }
        return cmds
    }
}
