import CEventShim
import FastCore
import Logging

/// The frontend's routes and WebSocket fan-out on one loop; `--loops N` runs N
/// of these on one port (SO_REUSEPORT), sharing totals through `FrontendShared`.
///
///     let app = FrontendApp(loop: loop, redis: redis, subscriber: sub, settings: settings, logger: log)
///     try app.listen(host: "0.0.0.0", port: 8000)
final class FrontendApp: HTTPServerDelegate {
    struct Settings: Sendable {
        var defaultTaskLength = 5
        var statusChannel = "task_status"
        var routes = TaskRoutes.defaults
        var limits = ce_server_limits(
            max_header_bytes: 16 * 1024, max_body_bytes: 1 << 20, max_ws_message: 1 << 20, header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000, max_connections: 10_000)
        /// Redis commands awaiting replies before new work is refused with 503.
        var maxPendingRedis = 10_000
        var webSockets = WebSocketHub.Settings()
        /// Bearer-token checking (nil: off).
        var auth: BearerAuth?
        /// Renders Prometheus text for `GET /metrics` (nil: 404).
        var renderMetrics: (@Sendable () -> String)?
    }

    private let loop: EventLoop
    private let redis: AsyncRedis
    private let subscriber: AsyncRedis
    private let settings: Settings
    private let logger: Logger
    private let shared: FrontendShared
    /// This loop's slot in `shared`; loop 0 publishes the gauges and queue depths.
    private let loopIndex: Int
    private(set) var server: HTTPServer?
    private var reportedWebSockets = 0
    private var producer = TaskProducer()
    private var hub: WebSocketHub!
    private let metrics = FrontendMetrics()
    private var sampler: LoopTimer?
    private var drainTimer: LoopTimer?
    /// Queues requests were sent to (their LLEN is sampled for /metrics).
    private var knownQueues: Set<String> = ["celery"]

    /// `redis` carries commands; `subscriber` is a second connection for pub/sub.
    init(
        loop: EventLoop, redis: AsyncRedis, subscriber: AsyncRedis, settings: Settings, logger: Logger,
        shared: FrontendShared = FrontendShared(loops: 1), loopIndex: Int = 0
    ) {
        self.loop = loop
        self.redis = redis
        self.subscriber = subscriber
        self.settings = settings
        self.logger = logger
        self.shared = shared
        self.loopIndex = loopIndex
        redis.onStateChange = { [weak self, weak subscriber] up in
            if up { self?.producer.reset() }
            shared.setBrokerUp(loop: loopIndex, up && subscriber?.isConnected == true)
        }
        subscriber.onStateChange = { [weak redis] up in
            shared.setBrokerUp(loop: loopIndex, up && redis?.isConnected == true)
        }
        hub = WebSocketHub(loop: loop, settings: settings.webSockets, logger: logger) { [weak redis] task, send in
            // A new subscriber gets the task's current state at once.
            redis?.send(["GET", ResultRecord.key(task)]) { reply in
                var state: JSON = ["task_id": .string(task)]
                for (k, v) in TaskStatusView.render(record: reply?.text).objectPairs ?? [] {
                    state = state.setting(k, v)
                }
                send(state.serialized())
            }
        }
        subscriber.subscribe(channel: settings.statusChannel) { [weak self] payload in self?.broadcast(payload) }
    }

    /// Bind the listener; returns the bound port. With `reusePort` other loops may
    /// listen on it too; `first` is the loop whose connection count this one shares.
    @discardableResult
    func listen(host: String, port: Int, reusePort: Bool = false, countingWith first: HTTPServer? = nil) throws -> Int {
        server = try HTTPServer(
            loop: loop, host: host, port: port, limits: settings.limits, delegate: self, reusePort: reusePort)
        if let first { server!.countConnections(with: first) }
        if settings.renderMetrics != nil {
            sampler = loop.timer(after: 1000, repeating: true) { [weak self] in self?.sampleMetrics() }
        }
        return server!.port
    }

    /// Graceful shutdown: stop accepting, close WebSockets with 1001, and call
    /// `done` once every request waiting on Redis has been answered (or after `limitMs`).
    func shutdown(limitMs: UInt64 = 5000, done: @escaping () -> Void) {
        server?.stopListening()
        hub.closeAll(code: 1001, reason: "server shutting down")
        let deadline = CeleryTime.now() + Double(limitMs) / 1000
        func check() {
            if redis.pending == 0 || CeleryTime.now() >= deadline {
                // Let the last responses and close frames reach the wire.
                drainTimer = loop.timer(after: 100) { done() }
            } else {
                drainTimer = loop.timer(after: 20) { check() }
            }
        }
        check()
    }

    // MARK: - routing

    func handle(_ request: HTTPRequest, on connection: Connection) {
        var request = request
        if request.method == "HEAD" { request.method = "GET" }  // answered as GET; the shim drops the body
        let path = request.path
        let route = FrontendMetrics.route(path)
        let start = CeleryTime.now()
        connection.onRespond = { [metrics] status in
            metrics.request(route: route, status: status, seconds: CeleryTime.now() - start)
        }
        if let auth = settings.auth, let scope = Self.scope(of: route) {
            switch auth.check(token: Self.token(of: request), scope: scope) {
            case .allowed: break
            case .unauthorized(let why):
                return error(
                    connection, 401, "unauthorized", why,
                    headers: ["WWW-Authenticate": "Bearer realm=\"celeris\", error=\"invalid_token\""])
            case .forbidden(let why):
                return error(connection, 403, "forbidden", why)
            }
        }
        switch path {
        case "/tasks":
            guard request.method == "POST" else { return methodNotAllowed(connection, allow: "POST") }
            submitTask(request, connection)
        case "/process", "/process/":
            guard request.method == "POST" else { return methodNotAllowed(connection, allow: "POST") }
            process(request, connection)
        case "/metrics":
            guard request.method == "GET" else { return methodNotAllowed(connection, allow: "GET") }
            guard let render = settings.renderMetrics else {
                return error(connection, 404, "not_found", "metrics are off")
            }
            connection.respond(status: 200, body: render(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        case "/health":
            guard request.method == "GET" else { return methodNotAllowed(connection, allow: "GET") }
            let up = shared.brokerUp
            connection.respond(
                status: up ? 200 : 503,
                json: [
                    "status": up ? "ok" : "degraded", "broker": up ? "connected" : "unreachable",
                    "websockets": .int(Int64(shared.webSockets)),
                ])
        case "/ws":
            guard request.method == "GET" else { return methodNotAllowed(connection, allow: "GET") }
            upgrade(request, connection)
        default:
            if path.hasPrefix("/status/") {
                guard request.method == "GET" else { return methodNotAllowed(connection, allow: "GET") }
                status(taskId: String(path.dropFirst("/status/".count)), connection)
            } else {
                error(connection, 404, "not_found", "no route for \(request.method) \(path)")
            }
        }
    }

    /// The scope a route needs; nil for the open ones (/health, /metrics).
    static func scope(of route: String) -> String? {
        switch route {
        case "/tasks", "other": return "tasks"
        case "/process": return "process"
        case "/status": return "status"
        case "/ws": return "ws"
        default: return nil
        }
    }

    /// `Authorization: Bearer <token>`, else `?token=` (browsers cannot set headers on WebSockets).
    static func token(of request: HTTPRequest) -> String? {
        if let h = request.header("Authorization"), h.lowercased().hasPrefix("bearer ") {
            return String(h.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        }
        return request.query["token"]
    }

    private func error(
        _ c: Connection, _ status: Int, _ code: String, _ detail: String, headers: [String: String] = [:],
        close: Bool = false
    ) {
        c.respond(
            status: status, json: ["error": .string(code), "detail": .string(detail)], headers: headers, close: close)
    }

    private func methodNotAllowed(_ c: Connection, allow: String) {
        error(c, 405, "method_not_allowed", "use \(allow)", headers: ["Allow": allow])
    }

    /// Back-pressure: Redis is slower than the clients; refuse instead of queueing without bound.
    private func overloaded(_ c: Connection) {
        error(
            c, 503, "overloaded", "\(redis.pending) Redis commands pending; retry shortly",
            headers: ["Retry-After": "1"])
    }

    private func brokerUnavailable(_ c: Connection) {
        error(
            c, 503, "broker_unavailable", "Redis at \(redis.endpoint) is unreachable; retry shortly",
            headers: ["Retry-After": "1"])
    }

    // MARK: - tasks

    private func submitTask(_ request: HTTPRequest, _ connection: Connection) {
        let submission: TaskSubmission
        do {
            submission = try TaskSubmission(request: request, defaultTaskLength: settings.defaultTaskLength)
        } catch {
            return self.error(
                connection, error.status, error.status == 400 ? "bad_request" : "invalid_task", error.detail)
        }
        enqueue(submission.message(routes: settings.routes), connection)
    }

    /// `POST /process?blob_path=…` (or `{"blob_path": …, "threshold": …}`): the
    /// document workflow, whose task id `GET /status` follows to the comparison.
    private func process(_ request: HTTPRequest, _ connection: Connection) {
        let workflow: TaskSubmission
        do {
            workflow = try TaskSubmission(processRequest: request)
        } catch {
            return self.error(
                connection, error.status, error.status == 400 ? "bad_request" : "invalid_workflow", error.detail)
        }
        enqueue(workflow.message(routes: settings.routes), connection)
    }

    /// LPUSH a message (declaring its queue once) and answer `{"task_id": …}` once Redis has it.
    private func enqueue(_ message: TaskMessage, _ connection: Connection) {
        if knownQueues.insert(message.queue).inserted { shared.addQueue(message.queue) }
        guard redis.isConnected else {
            producer.reset()
            return brokerUnavailable(connection)
        }
        guard redis.pending < settings.maxPendingRedis else { return overloaded(connection) }
        for cmd in producer.declareCommands(queue: message.queue) { redis.send(cmd) { _ in } }
        let sent = redis.send(bytes: TaskProducer.pushCommand(for: message)) { [weak self, logger] reply in
            guard let reply else {
                self?.brokerUnavailable(connection)
                return
            }
            if let e = reply.errorMessage {
                logger.error("LPUSH failed: \(e)")
                self?.error(connection, 503, "broker_error", e, headers: ["Retry-After": "1"])
                return
            }
            connection.respond(status: 200, json: ["task_id": .string(message.id)])
        }
        if !sent {
            producer.reset()
            brokerUnavailable(connection)
        }
    }

    private func status(taskId: String, _ connection: Connection) {
        guard !taskId.isEmpty, taskId.utf8.count <= 255, !taskId.utf8.contains(UInt8(ascii: "/")) else {
            return error(connection, 404, "not_found", "no such task id")
        }
        guard redis.pending < settings.maxPendingRedis else { return overloaded(connection) }
        let sent = redis.send(["GET", ResultRecord.key(taskId)]) { [weak self] reply in
            guard let reply else {
                self?.brokerUnavailable(connection)
                return
            }
            if let e = reply.errorMessage {
                self?.error(connection, 503, "broker_error", e, headers: ["Retry-After": "1"])
                return
            }
            connection.respond(status: 200, json: TaskStatusView.render(record: reply.text))
        }
        if !sent { brokerUnavailable(connection) }
    }

    // MARK: - HTTP errors

    func requestFailed(_ kind: Int32, on connection: Connection) {
        switch UInt32(kind) {
        case CE_HTTP_ERR_HEADERS_TOO_LARGE.rawValue:
            error(
                connection, 431, "headers_too_large",
                "request headers exceed \(settings.limits.max_header_bytes) bytes",
                close: true)
        case CE_HTTP_ERR_BODY_TOO_LARGE.rawValue:
            error(
                connection, 413, "body_too_large", "request body exceeds \(settings.limits.max_body_bytes) bytes",
                close: true)
        case CE_HTTP_ERR_TIMEOUT.rawValue:
            error(
                connection, 408, "request_timeout",
                "request not received within \(settings.limits.header_timeout_ms) ms", close: true)
        case CE_HTTP_ERR_OVERLOADED.rawValue:
            error(
                connection, 503, "too_many_connections", "over \(settings.limits.max_connections) open connections",
                headers: ["Retry-After": "1"], close: true)
        default:
            error(connection, 400, "bad_request", "malformed HTTP request", close: true)
        }
    }

    // MARK: - WebSocket

    private func upgrade(_ request: HTTPRequest, _ connection: Connection) {
        let connectionTokens = (request.header("Connection") ?? "").lowercased().split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard request.header("Upgrade")?.lowercased() == "websocket", connectionTokens.contains("upgrade") else {
            return error(connection, 400, "bad_handshake", "expected a WebSocket upgrade (Upgrade: websocket)")
        }
        guard request.header("Sec-WebSocket-Version") == "13" else {
            return error(
                connection, 400, "bad_handshake", "Sec-WebSocket-Version must be 13",
                headers: ["Sec-WebSocket-Version": "13"])
        }
        guard let key = request.header("Sec-WebSocket-Key")?.trimmingCharacters(in: .whitespaces),
            key.utf8.count == 24, key.hasSuffix("==")
        else {
            return error(connection, 400, "bad_handshake", "Sec-WebSocket-Key must be 16 base64-encoded bytes")
        }
        connection.acceptWebSocket(key: key)
        hub.add(connection)
        reportWebSockets()
        logger.debug("WebSocket \(connection.id) connected (\(hub.count) open)")
    }

    func webSocketMessage(_ opcode: Int32, _ bytes: UnsafeRawBufferPointer, on connection: Connection) {
        if opcode == Int32(CE_WS_TEXT.rawValue) {
            guard ce_utf8_valid(bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count) != 0 else {
                connection.closeWebSocket(code: 1007, reason: "text frame is not valid UTF-8")
                return
            }
            let text = String(decoding: bytes, as: UTF8.self)
            if !hub.command(text, from: connection.id) { logger.info("Received WebSocket data: \(text)") }
        } else {
            logger.info("Received WebSocket binary message of \(bytes.count) bytes")
        }
    }

    func webSocketFailed(_ kind: Int32, on connection: Connection) {
        let tooBig = UInt32(kind) == CE_WS_ERR_TOO_BIG.rawValue
        logger.info("WebSocket \(connection.id) protocol error \(kind); closing")
        connection.closeWebSocket(code: tooBig ? 1009 : 1002, reason: tooBig ? "message too big" : "protocol error")
    }

    func webSocketClosed(code: Int, on connection: Connection) {
        logger.debug("WebSocket \(connection.id) closed by client with \(code)")
    }

    func connectionClosed(_ id: UInt64) {
        hub.remove(id)
        reportWebSockets()
    }

    /// Keep this loop's WebSocket count in `shared` (for /health and the gauge).
    private func reportWebSockets() {
        guard hub.count != reportedWebSockets else { return }
        reportedWebSockets = hub.count
        shared.setWebSockets(loop: loopIndex, reportedWebSockets)
    }

    /// Once a second: fan-out counters and this loop's pending commands; loop 0
    /// also sets the gauges (totals of every loop) and the LLEN of every queue requests went to.
    private func sampleMetrics() {
        let counts = hub.takeCounts()
        metrics.fanOut(delivered: counts.delivered, dropped: counts.dropped, closedSlow: counts.closedSlow)
        shared.setRedisPending(loop: loopIndex, redis.pending)
        guard loopIndex == 0 else { return }
        let connections = server?.openConnections ?? 0
        let pending = shared.redisPending
        let sockets = shared.webSockets
        var depths: [String: Int] = [:]
        let queues = shared.queues
        var left = queues.count
        for q in queues {
            let keys = QueueKeys.listKeys(queue: q)
            // EVAL keeps the four LLENs one round trip per queue.
            redis.send(
                ["EVAL", "local n = 0 for _, k in ipairs(KEYS) do n = n + redis.call('LLEN', k) end return n", "4"]
                    + keys
            ) {
                [metrics] reply in
                depths[q] = Int(reply?.integer ?? 0)
                left -= 1
                if left == 0 {
                    metrics.sample(
                        connections: connections, webSockets: sockets, redisPending: pending, queueDepths: depths)
                }
            }
        }
    }

    /// Fan a `task_status` message out to the WebSocket clients.
    private func broadcast(_ payload: String) { hub.broadcast(payload) }
}
