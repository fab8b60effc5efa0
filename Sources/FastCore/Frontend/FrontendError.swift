/// An error answer of the frontend: the status, `{"error": code, "detail": text}`,
/// extra headers, and whether the connection closes after it.
///
///     let e = FrontendError.methodNotAllowed(allow: "POST")  // 405, Allow: POST
///     connection.respond(status: e.status, json: e.body, headers: e.headers, close: e.close)
public struct FrontendError: Equatable, Sendable {
    public var status: Int
    public var code: String
    public var detail: String
    public var headers: [String: String]
    public var close: Bool

    public init(_ status: Int, _ code: String, _ detail: String, headers: [String: String] = [:], close: Bool = false) {
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers
        self.close = close
    }

    /// The JSON body.
    public var body: JSON { ["error": .string(code), "detail": .string(detail)] }

    /// 405 with `Allow`.
    public static func methodNotAllowed(allow: String) -> FrontendError {
        FrontendError(405, "method_not_allowed", "use \(allow)", headers: ["Allow": allow])
    }

    /// 404.
    public static func notFound(_ detail: String) -> FrontendError { FrontendError(404, "not_found", detail) }

    /// A request body the client must fix (400 `bad_request` or 422 `invalidCode`).
    public static func invalid(_ e: TaskSubmission.Invalid, invalidCode: String) -> FrontendError {
        FrontendError(e.status, e.status == 400 ? "bad_request" : invalidCode, e.detail)
    }

    /// 401 or 403 for an auth verdict; nil when it allows.
    public static func auth(_ verdict: BearerAuth.Verdict) -> FrontendError? {
        switch verdict {
        case .allowed: return nil
        case .unauthorized(let why):
            return FrontendError(
                401, "unauthorized", why,
                headers: ["WWW-Authenticate": "Bearer realm=\"celeris\", error=\"invalid_token\""])
        case .forbidden(let why):
            return FrontendError(403, "forbidden", why)
        }
    }

    /// 503 with `Retry-After`: Redis is slower than the clients (`pending` commands wait on the loop's connection).
    public static func overloaded(pending: Int) -> FrontendError {
        FrontendError(
            503, "overloaded", "\(pending) Redis commands pending; retry shortly", headers: ["Retry-After": "1"])
    }

    /// 503 with `Retry-After`: the Redis at `endpoint` is unreachable.
    public static func brokerUnavailable(_ endpoint: RedisEndpoint) -> FrontendError {
        FrontendError(
            503, "broker_unavailable", "Redis at \(endpoint) is unreachable; retry shortly",
            headers: ["Retry-After": "1"])
    }

    /// 503 with `Retry-After`: Redis answered a command with an error.
    public static func brokerError(_ message: String) -> FrontendError {
        FrontendError(503, "broker_error", message, headers: ["Retry-After": "1"])
    }

    /// The answer to a request the server could not read, naming the limit it broke.
    public static func request(_ error: HTTPRequestError, limits: HTTPServer.Limits) -> FrontendError {
        switch error {
        case .headersTooLarge:
            return FrontendError(
                431, "headers_too_large", "request headers exceed \(limits.maxHeaderBytes) bytes", close: true)
        case .bodyTooLarge:
            return FrontendError(
                413, "body_too_large", "request body exceeds \(limits.maxBodyBytes) bytes", close: true)
        case .timeout:
            return FrontendError(
                408, "request_timeout", "request not received within \(limits.headerTimeoutMs) ms", close: true)
        case .overloaded:
            return FrontendError(
                503, "too_many_connections", "over \(limits.maxConnections) open connections",
                headers: ["Retry-After": "1"], close: true)
        case .malformed:
            return FrontendError(400, "bad_request", "malformed HTTP request", close: true)
        }
    }
}

extension Connection {
    /// Answer with an error: its status, JSON body, headers and whether the connection closes.
    ///
    ///     connection.respond(.notFound("no such task id"))
    func respond(_ e: FrontendError) {
        respond(status: e.status, json: e.body, headers: e.headers, close: e.close)
    }
}
