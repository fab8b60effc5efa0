import CEventShim

/// One parsed HTTP request, copied out of the C parser (or made by hand in tests).
///
///     let request = HTTPRequest(method: "POST", target: "/tasks?task_length=3", body: Array("{}".utf8))
///     request.path  // "/tasks"; request.query["task_length"] == "3"
public struct HTTPRequest {
    public var method: String
    public var path: String
    public var query: [String: String]
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    public var keepAlive: Bool
    public var upgrade: Bool

    /// The first header named `name` (ASCII case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { Self.sameToken($0.name, name) }?.value
    }

    /// ASCII case-insensitive equality (header names), without Foundation's locale-aware compare.
    static func sameToken(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        return zip(a.utf8, b.utf8).allSatisfy { $0 | 0x20 == $1 | 0x20 }
    }

    /// A request for `target` (path and query, percent-encoded as on the wire).
    public init(
        method: String, target: String, headers: [(name: String, value: String)] = [], body: [UInt8] = [],
        keepAlive: Bool = true, upgrade: Bool = false
    ) {
        self.method = method
        (path, query) = Array(target.utf8).withUnsafeBytes { HTTPRequest.split(target: $0) }
        self.headers = headers
        self.body = body
        self.keepAlive = keepAlive
        self.upgrade = upgrade
    }

    /// Path and query of a request target, each percent-decoded.
    static func split(target url: UnsafeRawBufferPointer) -> (path: String, query: [String: String]) {
        let mark = url.firstIndex(of: UInt8(ascii: "?")) ?? url.count
        let path = HTTPRequest.percentDecode(String(decoding: url[..<mark], as: UTF8.self))
        var query: [String: String] = [:]
        if mark < url.count {
            for pair in url[(mark + 1)...].split(separator: UInt8(ascii: "&")) {
                let eq = pair.firstIndex(of: UInt8(ascii: "=")) ?? pair.endIndex
                let key = HTTPRequest.percentDecode(String(decoding: pair[..<eq], as: UTF8.self))
                query[key] =
                    eq < pair.endIndex
                    ? HTTPRequest.percentDecode(String(decoding: pair[(eq + 1)...], as: UTF8.self)) : ""
            }
        }
        return (path, query)
    }

    init(_ r: UnsafePointer<ce_http_request>) {
        let req = r.pointee
        method = String(cString: req.method)
        (path, query) = HTTPRequest.split(target: UnsafeRawBufferPointer(start: req.url, count: req.url_len))
        headers = withUnsafeBytes(of: req.headers) { raw in
            let hs = raw.bindMemory(to: ce_header.self)
            return (0..<req.header_count).map { i in
                (
                    String(decoding: UnsafeRawBufferPointer(start: hs[i].name, count: hs[i].name_len), as: UTF8.self),
                    String(decoding: UnsafeRawBufferPointer(start: hs[i].value, count: hs[i].value_len), as: UTF8.self)
                )
            }
        }
        body = req.body_len > 0 ? Array(UnsafeRawBufferPointer(start: req.body, count: req.body_len)) : []
        keepAlive = req.keep_alive != 0
        upgrade = req.upgrade != 0
    }

    /// `%xx` and `+` decoding for paths and query strings.
    static func percentDecode(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else { return s }
        var out: [UInt8] = []
        var bytes = Array(s.utf8)[...]
        while let c = bytes.popFirst() {
            if c == UInt8(ascii: "%"), bytes.count >= 2,
                let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16)
            {
                out.append(v)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(c == UInt8(ascii: "+") ? UInt8(ascii: " ") : c)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
