import Crypto
import Foundation

/// Bearer tokens any number of frontends can verify without shared state:
/// `base64url(payload).base64url(HMAC-SHA256(secret, payload))`, where the
/// payload is `{"sub", "exp", "scope"}`.
///
///     let auth = BearerAuth(secret: "s3cret")
///     let token = auth.issue(subject: "alice", ttl: 3600, scopes: ["tasks", "status", "ws"])
///     auth.check(token: token, scope: "tasks")  // .allowed("alice")
public struct BearerAuth: Sendable {
    public enum Verdict: Equatable, Sendable {
        case allowed(String)
        /// No usable token: 401.
        case unauthorized(String)
        /// A valid token without the scope: 403.
        case forbidden(String)
    }

    private let secret: Data
    private var key: SymmetricKey { SymmetricKey(data: secret) }

    public init(secret: String) { self.secret = Data(secret.utf8) }

    /// A token for `subject`, valid `ttl` seconds, for `scopes` ("*" for every scope).
    public func issue(subject: String, ttl: Double, scopes: [String], now: Double = CeleryTime.now()) -> String {
        let payload: JSON = [
            "sub": .string(subject), "exp": .int(Int64(now + ttl)), "scope": .array(scopes.map(JSON.string)),
        ]
        let body = Self.base64url(Data(payload.serialized().utf8))
        return body + "." + Self.base64url(Data(HMAC<SHA256>.authenticationCode(for: Data(body.utf8), using: key)))
    }

    /// What a valid token says: who, until when, and its scopes.
    public struct Claims: Equatable, Sendable {
        public let subject: String
        /// Seconds since the epoch after which the token is refused.
        public let expires: Double
        public let scopes: [String]

        /// Whether the token may use `scope`: it has `*`, the scope itself, or a
        /// narrower `scope:…` (`tasks:create_task` reaches `POST /tasks`, which then
        /// sends only that task; `ws:all` reaches `/ws`).
        public func allows(_ scope: String) -> Bool {
            scopes.contains("*") || scopes.contains(scope) || scopes.contains { $0.hasPrefix(scope + ":") }
        }

        /// Whether the token has exactly `scope` (or `*`).
        public func has(_ scope: String) -> Bool { scopes.contains("*") || scopes.contains(scope) }
    }

    /// A token's claims when it is well formed, signed with this secret and not expired;
    /// otherwise the 401 verdict.
    public func verify(token: String?, now: Double = CeleryTime.now()) -> Result<Claims, Unauthorized> {
        guard let token, !token.isEmpty else { return .failure(Unauthorized(reason: "missing bearer token")) }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let mac = Self.unbase64url(String(parts[1])) else {
            return .failure(Unauthorized(reason: "malformed token"))
        }
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Data(parts[0].utf8), using: key) else {
            return .failure(Unauthorized(reason: "bad token signature"))
        }
        guard let raw = Self.unbase64url(String(parts[0])), let payload = try? JSONParser.parse(Array(raw)),
            let exp = payload["exp"]?.doubleValue, let sub = payload["sub"]?.stringValue
        else { return .failure(Unauthorized(reason: "malformed token payload")) }
        guard now < exp else { return .failure(Unauthorized(reason: "token expired")) }
        let scopes = payload["scope"]?.arrayValue?.compactMap(\.stringValue) ?? []
        return .success(Claims(subject: sub, expires: exp, scopes: scopes))
    }

    /// Why a token is not usable (401).
    public struct Unauthorized: Error, Equatable, Sendable {
        public let reason: String
    }

    /// Whether `token` may use `scope` now (see `Claims.allows`).
    public func check(token: String?, scope: String, now: Double = CeleryTime.now()) -> Verdict {
        switch verify(token: token, now: now) {
        case .failure(let e): return .unauthorized(e.reason)
        case .success(let claims): return Self.verdict(claims, scope: scope)
        }
    }

    /// The verdict for a verified token's `claims` on `scope`.
    public static func verdict(_ claims: Claims, scope: String) -> Verdict {
        claims.allows(scope)
            ? .allowed(claims.subject) : .forbidden("token for \(claims.subject) does not allow '\(scope)'")
    }

    /// base64url without padding (RFC 4648 section 5), from the standard alphabet's text.
    static func base64url(_ d: Data) -> String {
        var text: [UInt8] = []
        Base64.encode(Array(d), to: &text)
        while text.last == UInt8(ascii: "=") { text.removeLast() }
        for i in text.indices {
            if text[i] == UInt8(ascii: "+") {
                text[i] = UInt8(ascii: "-")
            } else if text[i] == UInt8(ascii: "/") {
                text[i] = UInt8(ascii: "_")
            }
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The bytes of base64url text (padding optional); nil if it is not base64url.
    static func unbase64url(_ s: String) -> Data? {
        var text = Array(s.utf8)
        for i in text.indices {
            switch text[i] {
            case UInt8(ascii: "-"): text[i] = UInt8(ascii: "+")
            case UInt8(ascii: "_"): text[i] = UInt8(ascii: "/")
            default: break
            }
        }
        if text.count % 4 == 1 { return nil }
        return Base64.decode(text).map { Data($0) }
    }
}
