/// TLS for a Redis link, as a `rediss://` URL's query spells it (redis-py's and kombu's names):
/// `ssl_cert_reqs` (`required`, default; `optional`, verified the same way by a client; `none`),
/// `ssl_ca_certs` (a CA bundle; default the system store), `ssl_ca_path`, `ssl_certfile` and
/// `ssl_keyfile` (a client certificate), `ssl_check_hostname` (default `true` while verifying),
/// `ssl_server_name` (the name sent and checked, when it is not the URL's host).
///
///     let ep = try RedisEndpoint(url: "rediss://:token@master.example.cache.amazonaws.com:6379/0?ssl_cert_reqs=required")
public struct RedisTLS: Sendable, Equatable, Hashable {
    /// Whether the server's certificate is verified (`ssl_cert_reqs`).
    public enum CertificateRequirement: String, Sendable {
        case required, optional, none
    }
    public var certificateRequirement: CertificateRequirement
    /// A PEM bundle of CAs to trust (`ssl_ca_certs`); nil with no `caPath`: the system store.
    public var caFile: String?
    /// A directory of hashed CA certificates (`ssl_ca_path`).
    public var caPath: String?
    /// A client certificate (`ssl_certfile`) and its key (`ssl_keyfile`, default: in the same file).
    public var certFile: String?
    public var keyFile: String?
    /// Whether the certificate must name the host (`ssl_check_hostname`); only while verifying.
    public var checkHostname: Bool
    /// The name sent (SNI) and checked; nil: the endpoint's host.
    public var serverName: String?

    public init(
        certificateRequirement: CertificateRequirement = .required, caFile: String? = nil, caPath: String? = nil,
        certFile: String? = nil, keyFile: String? = nil, checkHostname: Bool = true, serverName: String? = nil
    ) {
        self.certificateRequirement = certificateRequirement
        self.caFile = caFile
        self.caPath = caPath
        self.certFile = certFile
        self.keyFile = keyFile
        self.checkHostname = checkHostname
        self.serverName = serverName
    }

    /// True when the peer's certificate is checked against the CAs.
    public var verifies: Bool { certificateRequirement != .none }

    /// Set one `ssl_*` query option.
    mutating func set(_ key: String, _ value: String, url: String) throws(RedisEndpoint.InvalidURL) {
        switch key {
        case "ssl_cert_reqs":
            let word = value.lowercased()
            let bare = word.hasPrefix("cert_") ? String(word.dropFirst(5)) : word
            guard let r = CertificateRequirement(rawValue: bare) else {
                throw .init(url: url, reason: "ssl_cert_reqs must be required, optional or none, not \(value)")
            }
            certificateRequirement = r
        case "ssl_ca_certs": caFile = try Self.path(key, value, url)
        case "ssl_ca_path": caPath = try Self.path(key, value, url)
        case "ssl_certfile": certFile = try Self.path(key, value, url)
        case "ssl_keyfile": keyFile = try Self.path(key, value, url)
        case "ssl_check_hostname":
            guard let on = Self.flag(value) else {
                throw .init(url: url, reason: "ssl_check_hostname must be true or false, not \(value)")
            }
            checkHostname = on
        case "ssl_server_name":
            guard !value.isEmpty, value.utf8.count < 256 else {
                throw .init(url: url, reason: "ssl_server_name must be a host name")
            }
            serverName = value
        default:
            throw .init(
                url: url,
                reason: "unknown TLS option \(key) (Celeris reads ssl_cert_reqs, ssl_ca_certs, ssl_ca_path, "
                    + "ssl_certfile, ssl_keyfile, ssl_check_hostname, ssl_server_name)")
        }
    }

    private static func path(_ key: String, _ value: String, _ url: String) throws(RedisEndpoint.InvalidURL) -> String {
        guard !value.isEmpty, !value.utf8.contains(0) else {
            throw .init(url: url, reason: "\(key) must name a file")
        }
        return value
    }

    /// `true`/`false` as Python spells them too (`True`, `1`, `yes`).
    static func flag(_ value: String) -> Bool? {
        switch value.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: return nil
        }
    }
}

/// Redis Sentinel: the master is the one `sentinels` name for `masterName` (kombu's `master_name`
/// transport option), asked again whenever a link to it drops.
///
///     let ep = try RedisEndpoint(url: "sentinel://10.0.0.7:26379;sentinel://10.0.0.8:26379?master_name=mymaster")
public struct RedisSentinel: Sendable, Equatable {
    /// The name the sentinels monitor the master under.
    public var masterName: String
    /// Each sentinel's host and port, asked in turn.
    public var sentinels: [RedisEndpoint]
    /// Sentinel auth (`?sentinel_username=&sentinel_password=`, kombu's `sentinel_kwargs`).
    public var username: String?
    public var password: String?

    public init(masterName: String, sentinels: [RedisEndpoint], username: String? = nil, password: String? = nil) {
        self.masterName = masterName
        self.sentinels = sentinels
        self.username = username
        self.password = password
    }
}
