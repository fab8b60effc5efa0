import CEventShim

/// One parsed HTTP request, copied out of the C parser.
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

    public init(_ r: UnsafePointer<ce_http_request>) {
        let req = r.pointee
        method = String(cString: req.method)
        let url = UnsafeRawBufferPointer(start: req.url, count: req.url_len)
        let mark = url.firstIndex(of: UInt8(ascii: "?")) ?? url.count
        path = HTTPRequest.percentDecode(String(decoding: url[..<mark], as: UTF8.self))
        query = [:]
        if mark < url.count {
            for pair in url[(mark + 1)...].split(separator: UInt8(ascii: "&")) {
                let eq = pair.firstIndex(of: UInt8(ascii: "=")) ?? pair.endIndex
                let key = HTTPRequest.percentDecode(String(decoding: pair[..<eq], as: UTF8.self))
                query[key] =
                    eq < pair.endIndex
                    ? HTTPRequest.percentDecode(String(decoding: pair[(eq + 1)...], as: UTF8.self)) : ""
            }
        }
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
