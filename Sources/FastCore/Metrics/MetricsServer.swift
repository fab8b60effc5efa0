import Foundation

/// A tiny HTTP endpoint on its own thread and event loop: `GET /metrics`
/// answers `render()` in Prometheus text format; with `health`, `GET /health` answers
/// its status and JSON (readiness) and `GET /livez` 200 while the process serves
/// (liveness: it does not look at Redis); everything else 404.
///
///     try MetricsServer.start(host: "127.0.0.1", port: 9808) { registry.emitToString() }
public final class MetricsServer: HTTPServerDelegate, @unchecked Sendable {
    /// A `/health` answer: the status (200 or 503) and its JSON body.
    public typealias Health = @Sendable () -> (status: Int, json: JSON)
    private let render: @Sendable () -> String
    private let health: Health?
    private var server: HTTPServer?

    private init(render: @escaping @Sendable () -> String, health: Health?) {
        self.render = render
        self.health = health
    }

    /// Bind and serve on a background thread; returns the bound port.
    @discardableResult
    public static func start(
        host: String, port: Int, health: Health? = nil, render: @escaping @Sendable () -> String
    ) throws -> Int {
        let ready = DispatchSemaphore(value: 0)
        let outcome = LockedBox<Result<Int, HTTPServer.BindError>?>(nil)
        let thread = Thread {
            let app = MetricsServer(render: render, health: health)
            do {
                let loop = try EventLoop()
                let limits = HTTPServer.Limits(
                    maxHeaderBytes: 8192, maxBodyBytes: 0, maxWebSocketMessageBytes: 0, headerTimeoutMs: 10_000,
                    idleTimeoutMs: 60_000, maxConnections: 256)
                app.server = try HTTPServer(loop: loop, host: host, port: port, limits: limits, delegate: app)
                outcome.set(.success(app.server!.port))
                ready.signal()
                loop.run()
            } catch {
                outcome.set(.failure(HTTPServer.BindError(host: host, port: port)))  // no loop or no bind
                ready.signal()
            }
        }
        thread.name = "celeris-metrics"
        thread.start()
        ready.wait()
        return try outcome.get()!.get()
    }

    public func handle(_ request: HTTPRequest, on connection: Connection) {
        let known =
            request.path == "/metrics" || (health != nil && (request.path == "/health" || request.path == "/livez"))
        guard known else {
            let paths = health == nil ? "GET /metrics" : "GET /metrics, /health or /livez"
            return connection.respond(status: 404, json: ["error": "not_found", "detail": .string("try \(paths)")])
        }
        guard request.method == "GET" else {
            return connection.respond(
                status: 405, json: ["error": "method_not_allowed", "detail": "use GET"], headers: ["Allow": "GET"])
        }
        switch (request.path, health) {
        case ("/health", let health?):
            let (status, json) = health()
            connection.respond(status: status, json: json)
        case ("/livez", _):
            connection.respond(status: 200, json: ["status": "alive"])
        default:
            connection.respond(status: 200, body: render(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
    }
}
