/// The frontend's routes: which one a method and path reach, the label
/// request metrics use, and the token scope each needs.
///
///     FrontendRoute.resolve(method: "GET", path: "/tasks")  // .methodNotAllowed(allow: "POST")
///     FrontendRoute.resolve(method: "GET", path: "/status/abc")  // .route(.status(taskId: "abc"))
public enum FrontendRoute: Equatable, Sendable {
    /// `POST /tasks`
    case tasks
    /// `POST /process` (or `/process/`)
    case process
    /// `GET /metrics`
    case metrics
    /// `GET /health`
    case health
    /// `GET /` (or `/index.html`): the dashboard page
    case dashboard
    /// `GET /stats`: queue depths, throughput and workers online, for the dashboard
    case stats
    /// `GET /openapi.json`: the API as an OpenAPI 3.1 document (open)
    case openAPI
    /// `GET /ws`
    case webSocket
    /// `GET /status/{id}` (the id as it came, possibly empty)
    case status(taskId: String)
    /// `GET /schedule`
    case schedule
    /// `PUT` or `DELETE /schedule/{name}` (the name percent-decoded, possibly empty)
    case scheduleEntry(name: String)
    /// `DELETE /tasks/{id}`: revoke the task
    case task(taskId: String)
    /// `POST /tasks/{id}/revoke`
    case revoke(taskId: String)

    /// Where a request goes.
    public enum Resolution: Equatable, Sendable {
        case route(FrontendRoute)
        /// A known path, another method: 405 with `Allow: allow`.
        case methodNotAllowed(allow: String)
        /// 404.
        case notFound
    }

    /// The route for `method` and `path` (HEAD is answered as GET: pass "GET" for it).
    public static func resolve(method: String, path: String) -> Resolution {
        let route: FrontendRoute
        let allow: String
        switch path {
        case "/tasks": (route, allow) = (.tasks, "POST")
        case "/process", "/process/": (route, allow) = (.process, "POST")
        case "/metrics": (route, allow) = (.metrics, "GET")
        case "/health": (route, allow) = (.health, "GET")
        case "/ws": (route, allow) = (.webSocket, "GET")
        case "/schedule": (route, allow) = (.schedule, "GET")
        case "/", "/index.html": (route, allow) = (.dashboard, "GET")
        case "/stats": (route, allow) = (.stats, "GET")
        case "/openapi.json": (route, allow) = (.openAPI, "GET")
        default:
            if path.hasPrefix("/schedule/") {
                let entry = FrontendRoute.scheduleEntry(name: String(path.dropFirst("/schedule/".count)))
                return method == "PUT" || method == "DELETE" ? .route(entry) : .methodNotAllowed(allow: "PUT, DELETE")
            }
            if path.hasPrefix("/tasks/") {
                let rest = path.dropFirst("/tasks/".count)
                if rest.hasSuffix("/revoke") {
                    let id = String(rest.dropLast("/revoke".count))
                    guard !id.isEmpty, !id.contains("/") else { return .notFound }
                    return method == "POST" ? .route(.revoke(taskId: id)) : .methodNotAllowed(allow: "POST")
                }
                guard !rest.isEmpty, !rest.contains("/") else { return .notFound }
                return method == "DELETE" ? .route(.task(taskId: String(rest))) : .methodNotAllowed(allow: "DELETE")
            }
            guard path.hasPrefix("/status/") else { return .notFound }
            (route, allow) = (.status(taskId: String(path.dropFirst("/status/".count))), "GET")
        }
        return method == allow ? .route(route) : .methodNotAllowed(allow: allow)
    }

    /// Route label for a path in metrics: the route it matched, or "other".
    public static func label(path: String) -> String {
        if path.hasPrefix("/status/") { return "/status" }
        if path.hasPrefix("/tasks/") { return "/tasks" }
        if path == "/schedule" || path.hasPrefix("/schedule/") { return "/schedule" }
        switch path {
        case "/tasks", "/process", "/health", "/ws", "/metrics": return path
        case "/process/": return "/process"
        case "/", "/index.html": return "/"
        case "/stats": return "/stats"
        case "/openapi.json": return "/openapi.json"
        default: return "other"
        }
    }

    /// The token scope a route label needs; nil for the open ones (/health, /metrics).
    /// Unknown paths need `tasks`, so a 404 tells nothing to a client without a token.
    public static func scope(label: String) -> String? {
        switch label {
        case "/tasks", "other": return "tasks"
        case "/process": return "process"
        case "/status", "/stats": return "status"
        case "/ws": return "ws"
        case "/schedule": return "schedule"
        default: return nil
        }
    }
}
