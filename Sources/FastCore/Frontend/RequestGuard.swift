import Foundation

/// Cross-site checks on a request, before auth and routing: the `Host` header
/// (DNS rebinding: on a loopback listener only loopback names by default), the
/// `Origin` of browser requests that act (`/ws`, `POST`s: same host as `Host`,
/// or an allowed origin; none for non-browser clients), and JSON bodies'
/// content type (no preflight-free `text/plain` POSTs).
///
///     let g = RequestGuard(listenHost: "127.0.0.1", allowedHosts: [], allowedOrigins: [])
///     g.hostRefusal(request)  // nil for Host: localhost:8000, 400 for Host: evil.example
public struct RequestGuard: Sendable {
    /// Host names (lower case, `fnmatch` globs) a request may name; nil: any.
    public let allowedHosts: [String]?
    /// Origins (`scheme://host[:port]`, lower case; `*` for any) allowed besides the request's own host.
    public let allowedOrigins: [String]

    /// The names a loopback listener accepts when no `--allowed-host` is given.
    public static let loopbackNames = ["localhost", "127.0.0.1", "::1"]

    /// `allowedHosts` empty: any host, unless `listenHost` is a loopback address
    /// (then only `loopbackNames`).
    public init(listenHost: String, allowedHosts: [String], allowedOrigins: [String]) {
        if !allowedHosts.isEmpty {
            self.allowedHosts = allowedHosts.map { $0.lowercased() }
        } else if Self.isLoopback(listenHost) {
            self.allowedHosts = Self.loopbackNames
        } else {
            self.allowedHosts = nil
        }
        self.allowedOrigins = allowedOrigins.map { $0.lowercased() }
    }

    /// Whether a listen address only takes connections from this machine.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    /// The host name of a `Host` header value (`name[:port]` or `[v6][:port]`), lower case.
    public static func hostName(_ value: String) -> String {
        // Foundation's lower-casing and trimming cost more than the rest of a request: only
        // a value with an upper-case letter or a blank is rewritten.
        var h = value
        if value.utf8.contains(where: { ($0 >= 0x41 && $0 <= 0x5A) || $0 == 0x20 || $0 == 0x09 }) {
            h = value.lowercased().trimmingCharacters(in: .whitespaces)
        }
        if h.hasPrefix("[") {
            guard let end = h.firstIndex(of: "]") else { return h }
            return String(h[h.index(after: h.startIndex)..<end])
        }
        guard let colon = h.lastIndex(of: ":") else { return h }
        return String(h[..<colon])
    }

    /// 400 when the `Host` header names a host this frontend does not serve.
    /// A request without one passes (HTTP/1.0 clients; browsers always send it).
    public func hostRefusal(_ request: HTTPRequest) -> FrontendError? {
        guard let allowedHosts, let value = request.header("Host") else { return nil }
        let name = Self.hostName(value)
        guard allowedHosts.contains(name) || allowedHosts.contains(where: { fnmatch($0, name, 0) == 0 }) else {
            return FrontendError(400, "host_not_allowed", "this server does not answer for host '\(name)'")
        }
        return nil
    }

    /// 403 when a browser's `Origin` is neither this server (the `Host` header) nor an allowed origin.
    /// No `Origin` passes: non-browser clients do not send one.
    public func originRefusal(_ request: HTTPRequest) -> FrontendError? {
        guard let raw = request.header("Origin") else { return nil }
        let origin = raw.trimmingCharacters(in: .whitespaces).lowercased()
        if allowedOrigins.contains("*") || allowedOrigins.contains(origin) { return nil }
        if let host = request.header("Host")?.trimmingCharacters(in: .whitespaces).lowercased(),
            let sep = origin.range(of: "://"), origin[sep.upperBound...] == host[...]
        {
            return nil
        }
        return FrontendError(403, "origin_not_allowed", "cross-origin request from '\(origin)' is not allowed")
    }

    /// 415 when a request has a non-blank body that is not declared JSON
    /// (`application/json` or a `+json` type).
    public static func contentTypeRefusal(_ request: HTTPRequest) -> FrontendError? {
        let blank = request.body.allSatisfy { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
        guard !blank else { return nil }
        let declared = request.header("Content-Type") ?? ""
        if declared == "application/json" { return nil }  // the usual case, without Foundation's string work
        let type = declared.split(separator: ";", maxSplits: 1).first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }
        if let type, type == "application/json" || (type.contains("/") && type.hasSuffix("+json")) { return nil }
        return FrontendError(
            415, "unsupported_media_type", "a request body must be JSON (Content-Type: application/json)")
    }
}
