import CEventShim

/// A Redis reply copied out of hiredis.
public enum RedisValue: Sendable, Equatable {
    case string([UInt8])
    case integer(Int64)
    case array([RedisValue])
    case null
    case status(String)
    case error(String)

    /// Copy a hiredis reply tree.
    init(reply: OpaquePointer) {
        switch Int32(ce_reply_type(reply)) {
        case Int32(CE_REPLY_STRING.rawValue):
            var len = 0
            let p = ce_reply_str(reply, &len)
            self = .string(p.map { Array(UnsafeRawBufferPointer(start: UnsafeRawPointer($0), count: len)) } ?? [])
        case Int32(CE_REPLY_INTEGER.rawValue):
            self = .integer(ce_reply_integer(reply))
        case Int32(CE_REPLY_ARRAY.rawValue):
            let n = ce_reply_elements(reply)
            self = .array((0..<n).map { RedisValue(reply: ce_reply_element(reply, $0)!) })
        case Int32(CE_REPLY_STATUS.rawValue):
            self = .status(RedisValue.text(reply))
        case Int32(CE_REPLY_ERROR.rawValue):
            self = .error(RedisValue.text(reply))
        default:
            self = .null
        }
    }

    private static func text(_ reply: OpaquePointer) -> String {
        var len = 0
        guard let p = ce_reply_str(reply, &len) else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: UnsafeRawPointer(p), count: len), as: UTF8.self)
    }

    /// The bytes of a bulk string as text.
    public var text: String? {
        switch self {
        case .string(let b): return String(decoding: b, as: UTF8.self)
        case .status(let s): return s
        default: return nil
        }
    }

    public var bytes: [UInt8]? { if case .string(let b) = self { return b } else { return nil } }
    public var integer: Int64? { if case .integer(let i) = self { return i } else { return nil } }
    public var elements: [RedisValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var errorMessage: String? { if case .error(let e) = self { return e } else { return nil } }
}

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

    /// Commands to run on every new connection (AUTH, SELECT).
    public var handshake: [[String]] {
        var cmds: [[String]] = []
        if let password { cmds.append(["AUTH", password]) }
        if db != 0 { cmds.append(["SELECT", String(db)]) }
        return cmds
    }
}

/// Call `body` with argv pointers and lengths for `args` (binary-safe).
func withArgv<R>(_ args: [String], _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R)
    -> R
{
    var storage: [UInt8] = []
    var offsets: [Int] = []
    var lengths: [Int] = []
    for a in args {
        offsets.append(storage.count)
        storage.append(contentsOf: a.utf8)
        lengths.append(storage.count - offsets.last!)
    }
    storage.append(0)
    return storage.withUnsafeBufferPointer { sbuf in
        let base = UnsafeRawPointer(sbuf.baseAddress!).assumingMemoryBound(to: CChar.self)
        var argv: [UnsafePointer<CChar>?] = offsets.map { base + $0 }
        return argv.withUnsafeMutableBufferPointer { abuf in
            lengths.withUnsafeBufferPointer { lbuf in body(Int32(args.count), abuf.baseAddress!, lbuf.baseAddress!) }
        }
    }
}
