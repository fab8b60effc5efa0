import CEventShim

/// Why the server could not read a request; the delegate answers it and the
/// connection closes.
///
///     func requestFailed(_ error: HTTPRequestError, on connection: Connection) {
///         if error == .bodyTooLarge { connection.respond(status: 413, body: "{}", close: true) }
///     }
public enum HTTPRequestError: Sendable, Equatable {
    /// Not HTTP/1.x.
    case malformed
    /// Request line and headers over `Limits.maxHeaderBytes` (or too many headers).
    case headersTooLarge
    /// Content-Length or chunks over `Limits.maxBodyBytes`.
    case bodyTooLarge
    /// A request started but did not arrive whole within `Limits.headerTimeoutMs` (slowloris).
    case timeout
    /// Accepted beyond `Limits.maxConnections`.
    case overloaded

    /// The C server's error kind.
    init(kind: Int32) {
        switch UInt32(bitPattern: kind) {
        case CE_HTTP_ERR_HEADERS_TOO_LARGE.rawValue: self = .headersTooLarge
        case CE_HTTP_ERR_BODY_TOO_LARGE.rawValue: self = .bodyTooLarge
        case CE_HTTP_ERR_TIMEOUT.rawValue: self = .timeout
        case CE_HTTP_ERR_OVERLOADED.rawValue: self = .overloaded
        default: self = .malformed
        }
    }
}
