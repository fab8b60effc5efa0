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

    /// Whether `token` may use `scope` now.
    public func check(token: String?, scope: String, now: Double = CeleryTime.now()) -> Verdict {
        guard let token, !token.isEmpty else { return .unauthorized("missing bearer token") }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let mac = Self.unbase64url(String(parts[1])) else {
            return .unauthorized("malformed token")
        }
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Data(parts[0].utf8), using: key) else {
            return .unauthorized("bad token signature")
        }
        guard let raw = Self.unbase64url(String(parts[0])), let payload = try? JSONParser.parse(Array(raw)),
            let exp = payload["exp"]?.doubleValue, let sub = payload["sub"]?.stringValue
        else { return .unauthorized("malformed token payload") }
        guard now < exp else { return .unauthorized("token expired") }
        let scopes = payload["scope"]?.arrayValue?.compactMap(\.stringValue) ?? []
        guard scopes.contains("*") || scopes.contains(scope) else {
            return .forbidden("token for \(sub) does not allow '\(scope)'")
        }
        return .allowed(sub)
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
