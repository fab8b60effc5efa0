import Glibc

/// Where Redis is: `redis://[:password@]host[:port][/db]`.
///
///     let ep = try RedisEndpoint(url: "redis://127.0.0.1:6379/0")
public struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var db: Int
    public var password: String?

    public init(host: String = "127.0.0.1", port: Int = 6379, db: Int = 0, password: String? = nil) {
        self.host = host
        self.port = port
        self.db = db
        self.password = password
    }

    public struct InvalidURL: Error, CustomStringConvertible {
        public let url: String
        public var description: String { "not a redis:// URL: \(url)" }
    }

    public init(url: String) throws(InvalidURL) {
        guard url.hasPrefix("redis://") else { throw InvalidURL(url: url) }
        var rest = Substring(url.dropFirst("redis://".count))
        self.init()
        if let at = rest.lastIndex(of: "@") {
            let auth = rest[..<at]
            rest = rest[rest.index(after: at)...]
            let pw = auth.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).last.map(String.init)
            password = (pw?.isEmpty ?? true) ? nil : pw
        }
        if let slash = rest.firstIndex(of: "/") {
            let dbText = rest[rest.index(after: slash)...]
            if !dbText.isEmpty {
                guard let d = Int(dbText), d >= 0 else { throw InvalidURL(url: url) }
                db = d
            }
            rest = rest[..<slash]
        }
        if let colon = rest.lastIndex(of: ":") {
            guard let p = Int(rest[rest.index(after: colon)...]), p > 0, p < 65536 else { throw InvalidURL(url: url) }
            port = p
            rest = rest[..<colon]
        }
        if !rest.isEmpty { host = String(rest) }
    }

    public var description: String { "redis://\(host):\(port)/\(db)" }

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

    /// Commands to run on every new connection (AUTH, SELECT).
    public var handshake: [[String]] {
        var cmds: [[String]] = []
        if let password { cmds.append(["AUTH", password]) }
        if db != 0 { cmds.append(["SELECT", String(db)]) }
        return cmds
    }
}
