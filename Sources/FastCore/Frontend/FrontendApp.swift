import Foundation
import Logging

/// The frontend's routes and WebSocket fan-out on one loop; `--loops N` runs N
/// of these on one port (SO_REUSEPORT), sharing totals through `FrontendShared`.
///
///     let app = FrontendApp(loop: loop, redis: redis, subscriber: sub, settings: settings, logger: log)
///     try app.listen(host: "0.0.0.0", port: 8000)
public final class FrontendApp: HTTPServerDelegate {
    /// Everything the command line sets.
    ///
    ///     var settings = FrontendApp.Settings()
    ///     settings.limits.maxBodyBytes = 4 << 20
    public struct Settings: Sendable {
        public var defaultTaskLength = 5
        public var statusChannel = "task_status"
        public var routes = TaskRoutes()
        public var limits = HTTPServer.Limits()
        /// Redis commands awaiting replies before new work is refused with 503.
        public var maxPendingRedis = 10_000
        public var webSockets = WebSocketHub.Settings()
        /// Bearer-token checking (nil: off).
        public var auth: BearerAuth?
        /// Renders Prometheus text for `GET /metrics` (nil: 404).
        public var renderMetrics: (@Sendable () -> String)?
        /// Milliseconds a graceful shutdown waits for requests in flight.
        public var shutdownLimitMs: UInt64 = 5000
        /// Which tasks, arguments and queues `POST /tasks` may send.
        public var tasks = TaskPolicy()
        /// Host names requests may name (globs); empty: any, or only loopback names on a loopback listener.
        public var allowedHosts: [String] = []
        /// Browser origins allowed besides the server's own (`/ws` and `POST`s).
        public var allowedOrigins: [String] = []
        /// Most tasks one loop follows at once for `/ws` subscriptions (and waits) (beyond: refused).
        public var maxWatchedTasks = 100_000
        /// Durable enqueue: replicas a task must reach (Redis `WAIT`) before `POST /tasks` or
        /// `/process` answers 200; fewer within `durableTimeoutMs` answer 503 `not_replicated` (0: off).
        public var durableReplicas = 0
        /// Milliseconds the durable enqueue's `WAIT` blocks at most.
        public var durableTimeoutMs = 1000

        public init() {}
    }

    private let loop: EventLoop
    private let redis: AsyncRedis
    private let subscriber: AsyncRedis
    public let settings: Settings
    private let logger: Logger
    private let clock: any WallClock
    private let shared: FrontendShared
    /// This loop's slot in `shared`; loop 0 publishes the gauges and queue depths.
    private let loopIndex: Int
    // Exclusivity: an app is used on its loop's thread only: the run-time check is pure cost.
    @exclusivity(unchecked) public private(set) var server: HTTPServer?
    @exclusivity(unchecked) private var reportedWebSockets = 0
    @exclusivity(unchecked) private var producer = TaskProducer()
    /// This loop's WebSocket clients.
    public let hub: WebSocketHub
    /// Every state of the tasks this loop's clients follow (`/ws` subscriptions, status waits).
    let resultWatch: ResultWatch
    private let metrics = FrontendMetrics()
    /// `GET /schedule`, `PUT` and `DELETE /schedule/{name}`.
    private let scheduleAPI: ScheduleAPI
    /// Revoke, and `GET /status/{id}` with children.
    private let taskAPI: TaskAPI
    /// Batched `WAIT`s after the pushes, at most one in flight (nil: durable enqueue off).
    private let durable: DurableEnqueue?
    @exclusivity(unchecked) private var sampler: LoopTimer?
    /// Loop 0's `/stats` sampler (queue depths every 2 s; workers while /stats is read).
    @exclusivity(unchecked) private var statsSampler: StatsSampler?
    @exclusivity(unchecked) private var pinger: LoopTimer?
    @exclusivity(unchecked) private var drainTimer: LoopTimer?
    /// Queues requests were sent to (their LLEN is sampled for /metrics).
    @exclusivity(unchecked) private var knownQueues: Set<String> = ["celery"]
    /// Host and origin checks (set by `listen`, which knows the listen address).
    @exclusivity(unchecked)
    private var requestGuard = RequestGuard(listenHost: "", allowedHosts: [], allowedOrigins: [])

    /// `redis` carries commands; `subscriber` is a second connection for pub/sub.
    /// `clock` times requests, the shutdown limit and the WebSocket policy.
    public init(
        loop: EventLoop, redis: AsyncRedis, subscriber: AsyncRedis, settings: Settings, logger: Logger,
        shared: FrontendShared = FrontendShared(loops: 1), loopIndex: Int = 0, clock: any WallClock = SystemClock()
    ) {
        self.loop = loop
        self.redis = redis
        self.subscriber = subscriber
        self.settings = settings
        self.logger = logger
        self.clock = clock
        self.shared = shared
        self.loopIndex = loopIndex
        resultWatch = ResultWatch(
            loop: loop, redis: redis, endpoint: redis.endpoint, logger: logger,
            maxWatchedTasks: settings.maxWatchedTasks, maxPendingRedis: settings.maxPendingRedis)
        scheduleAPI = ScheduleAPI(redis: redis, maxPendingRedis: settings.maxPendingRedis, logger: logger)
        taskAPI = TaskAPI(
            loop: loop, redis: redis, watch: resultWatch, maxPendingRedis: settings.maxPendingRedis, logger: logger)
        hub = WebSocketHub(settings: settings.webSockets, logger: logger, clock: clock, results: resultWatch)
        durable =
            settings.durableReplicas > 0
            ? DurableEnqueue(
                loop: loop, redis: redis,
                settings: .init(replicas: settings.durableReplicas, timeoutMs: settings.durableTimeoutMs),
                logger: logger) : nil
        redis.onStateChange = { [weak self, weak subscriber] up in
            if up { self?.producer.reset() }
            shared.setBrokerUp(loop: loopIndex, up && subscriber?.isConnected == true)
        }
        subscriber.onStateChange = { [weak redis] up in
            shared.setBrokerUp(loop: loopIndex, up && redis?.isConnected == true)
        }
        pinger = loop.timer(after: settings.webSockets.pingIntervalMs, repeating: true) { [weak self] in
            self?.hub.keepalive()
        }
        if settings.webSockets.firehose {
            subscriber.subscribe(channel: settings.statusChannel) { [weak self] payload in self?.hub.broadcast(payload)
            }
        }
    }

    /// Connect the result watch's subscriber (`FrontendLoops` calls it with the Redis connections' `start`).
    func startResultWatch() { resultWatch.start() }

    /// Bind the listener; returns the bound port. With `reusePort` other loops may
    /// listen on it too; `first` is the loop whose connection count this one shares.
    @discardableResult
    public func listen(host: String, port: Int, reusePort: Bool = false, countingWith first: HTTPServer? = nil) throws
        -> Int
    {
        requestGuard = RequestGuard(
            listenHost: host, allowedHosts: settings.allowedHosts, allowedOrigins: settings.allowedOrigins)
        let server = try HTTPServer(
            loop: loop, host: host, port: port, limits: settings.limits, delegate: self, reusePort: reusePort)
        self.server = server
        if let first { server.countConnections(with: first) }
        if loopIndex == 0 {
            statsSampler = StatsSampler(
                loop: loop, redis: redis, shared: shared, clock: clock, maxPendingRedis: settings.maxPendingRedis,
                logger: logger)
            statsSampler?.start()
        }
        if settings.renderMetrics != nil {
            sampler = loop.timer(after: 1000, repeating: true) { [weak self] in self?.sampleMetrics() }
        }
        return server.port
    }

    /// Graceful shutdown: stop accepting, close WebSockets with 1001, and call
    /// `done` once every request waiting on Redis has been answered (or after
    /// `settings.shutdownLimitMs`).
    public func shutdown(done: @escaping () -> Void) {
        server?.stopListening()
        hub.closeAll(code: 1001, reason: "server shutting down")
        taskAPI.shutdown()  // long-polls answered with the state they have
        resultWatch.close()  // its subscriber link closed: nothing more is watched
        statsSampler?.stop()
        let deadline = clock.now() + Double(settings.shutdownLimitMs) / 1000
        func check() {
            // Durable enqueue: between a push's reply and its WAIT nothing may be pending,
            // yet the push's client is owed an answer.
            let settled = redis.pending == 0 && (durable?.idle ?? true)
            if settled || clock.now() >= deadline {
                // Let the last responses and close frames reach the wire.
                drainTimer = loop.timer(after: 100) { done() }
            } else {
                drainTimer = loop.timer(after: 20) { check() }
            }
        }
        check()
    }

    // MARK: - routing

    public func handle(_ request: HTTPRequest, on connection: Connection) {
        var request = request
        if request.method == "HEAD" { request.method = "GET" }  // answered as GET; the shim drops the body
        let path = request.path
        let label = FrontendRoute.label(path: path)
        let start = clock.now()
        connection.onRespond = { [metrics, clock] status in
            metrics.request(route: label, status: status, seconds: clock.now() - start)
        }
        if label != "/health", let refused = requestGuard.hostRefusal(request) { return answer(connection, refused) }
        if label == "/ws" || request.method != "GET", let refused = requestGuard.originRefusal(request) {
            return answer(connection, refused)
        }
        var claims: BearerAuth.Claims?
        if let auth = settings.auth, let scope = FrontendRoute.scope(label: label) {
            let verdict: BearerAuth.Verdict
            switch auth.verify(token: Self.token(of: request), now: clock.now()) {
            case .failure(let e): verdict = .unauthorized(e.reason)
            case .success(let c):
                claims = c
                verdict = BearerAuth.verdict(c, scope: scope)
            }
            if let denied = FrontendError.auth(verdict) { return answer(connection, denied) }
        }
        switch FrontendRoute.resolve(method: request.method, path: path) {
        case .notFound:
            answer(connection, .notFound("no route for \(request.method) \(path)"))
        case .methodNotAllowed(let allow):
            answer(connection, .methodNotAllowed(allow: allow))
        case .route(.tasks):
            submitTask(request, connection, scopes: claims?.scopes)
        case .route(.process):
            process(request, connection)
        case .route(.metrics):
            guard let render = settings.renderMetrics else { return answer(connection, .notFound("metrics are off")) }
            connection.respond(status: 200, body: render(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        case .route(.health):
            let up = shared.brokerUp
            connection.respond(
                status: up ? 200 : 503,
                json: [
                    "status": up ? "ok" : "degraded", "broker": up ? "connected" : "unreachable",
                    "websockets": .int(Int64(shared.webSockets)),
                ])
        case .route(.webSocket):
            upgrade(request, connection, claims: claims)
        case .route(.status(let taskId)):
            taskAPI.status(taskId: taskId, request: request, connection)
        case .route(.task(let taskId)), .route(.revoke(let taskId)):
            taskAPI.revoke(taskId: taskId, request: request, scopes: claims?.scopes, connection)
        case .route(.dashboard):
            connection.respond(
                status: 200, body: DashboardPage.html, contentType: "text/html; charset=utf-8",
                headers: DashboardPage.headers)
        case .route(.openAPI):
            connection.respond(status: 200, body: OpenAPIDocument.json, contentType: OpenAPIDocument.contentType)
        case .route(.stats):
            shared.stats.markRead(now: clock.now())
            connection.respond(
                status: 200,
                json: StatsAPI.render(board: shared.stats, webSockets: shared.webSockets, now: clock.now()),
                headers: ["Cache-Control": "no-store"])
        case .route(.schedule):
            scheduleAPI.list(connection)
        case .route(.scheduleEntry(let name)):
            if request.method == "PUT" {
                scheduleAPI.put(name: name, request: request, connection)
            } else {
                scheduleAPI.delete(name: name, connection)
            }
        }
    }

    /// `Authorization: Bearer <token>`, else `?token=` (browsers cannot set headers on WebSockets).
    public static func token(of request: HTTPRequest) -> String? {
        if let h = request.header("Authorization"), h.lowercased().hasPrefix("bearer ") {
            return String(h.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        }
        return request.query["token"]
    }

    private func answer(_ c: Connection, _ e: FrontendError) { c.respond(e) }

    /// Back-pressure: Redis is slower than the clients; refuse instead of queueing without bound.
    private func overloaded(_ c: Connection) {
        c.respond(.overloaded(pending: redis.pending))
    }

    private func brokerUnavailable(_ c: Connection) {
        c.respond(.brokerUnavailable(redis.endpoint))
    }

    private func brokerError(_ c: Connection, _ message: String) {
        c.respond(.brokerError(message))
    }

    // MARK: - tasks

    /// `scopes`: the token's (nil with auth off), which may narrow the allowed tasks.
    private func submitTask(_ request: HTTPRequest, _ connection: Connection, scopes: [String]?) {
        if let refused = RequestGuard.contentTypeRefusal(request) { return answer(connection, refused) }
        let submission: TaskSubmission
        do {
            submission = try TaskSubmission(request: request, defaultTaskLength: settings.defaultTaskLength)
        } catch {
            return answer(connection, .invalid(error, invalidCode: "invalid_task"))
        }
        if let r = settings.tasks.refusal(for: submission, routes: settings.routes, scopes: scopes) {
            return answer(connection, FrontendError(r.status, r.code, r.detail))
        }
        let now = CeleryTime.now()
        enqueue(
            submission.message(routes: settings.routes, now: now), connection,
            expiration: submission.expiration(now: now))
    }

    /// `POST /process?blob_path=…` (or `{"blob_path": …, "threshold": …}`): the
    /// document workflow, whose task id `GET /status` follows to the comparison.
    private func process(_ request: HTTPRequest, _ connection: Connection) {
        if let refused = RequestGuard.contentTypeRefusal(request) { return answer(connection, refused) }
        let workflow: TaskSubmission
        do {
            workflow = try TaskSubmission(processRequest: request)
        } catch {
            return answer(connection, .invalid(error, invalidCode: "invalid_workflow"))
        }
        enqueue(workflow.message(routes: settings.routes), connection)
    }

    /// LPUSH a message (declaring its queue once) and answer `{"task_id": …}` once Redis has it
    /// (with durable enqueue: once its batch's `WAIT` says enough replicas have it, else 503).
    /// `expiration`: the property kombu adds when the task expires (milliseconds left, as text).
    private func enqueue(_ message: TaskMessage, _ connection: Connection, expiration: String? = nil) {
        if knownQueues.insert(message.queue).inserted { shared.addQueue(message.queue) }
        guard redis.isConnected else {
            producer.reset()
            return brokerUnavailable(connection)
        }
        guard redis.pending < settings.maxPendingRedis else { return overloaded(connection) }
        for cmd in producer.declareCommands(queue: message.queue) { redis.send(cmd) { _ in } }
        var push = TaskProducer.pushCommand(for: message)
        if let expiration { push[2] = message.envelopeBytes(expiration: expiration) }
        let batch = durable?.join()
        // Held strongly: with durable enqueue a 200 is never sent without its WAIT's answer,
        // even if the app is gone before the reply.
        let sent = redis.send(bytes: push) { [redis, shared, durable, logger] reply in
            guard let reply else {
                connection.respond(.brokerUnavailable(redis.endpoint))
                return
            }
            if let e = reply.errorMessage {
                logger.error("LPUSH failed: \(e)")
                connection.respond(.brokerError(e))
                return
            }
            shared.stats.countSubmitted()
            guard let batch, let durable else {
                return connection.respond(status: 200, json: ["task_id": .string(message.id)])
            }
            batch.await { outcome in
                if let refused = durable.refusal(outcome, taskId: message.id) {
                    connection.respond(status: refused.error.status, json: refused.body, headers: refused.error.headers)
                } else {
                    connection.respond(status: 200, json: ["task_id": .string(message.id)])
                }
            }
        }
        if !sent {
            producer.reset()
            brokerUnavailable(connection)
        }
    }

    // MARK: - HTTP errors

    public func requestFailed(_ error: HTTPRequestError, on connection: Connection) {
        answer(connection, .request(error, limits: settings.limits))
    }

    // MARK: - WebSocket

    /// `claims`: the token's (nil with auth off). Without `ws:all` the client gets only
    /// the tasks it subscribes to; it is closed (1008) when the token expires.
    private func upgrade(_ request: HTTPRequest, _ connection: Connection, claims: BearerAuth.Claims?) {
        let connectionTokens = (request.header("Connection") ?? "").lowercased().split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard request.header("Upgrade")?.lowercased() == "websocket", connectionTokens.contains("upgrade") else {
            return answer(
                connection, FrontendError(400, "bad_handshake", "expected a WebSocket upgrade (Upgrade: websocket)"))
        }
        guard request.header("Sec-WebSocket-Version") == "13" else {
            return answer(
                connection,
                FrontendError(
                    400, "bad_handshake", "Sec-WebSocket-Version must be 13", headers: ["Sec-WebSocket-Version": "13"]))
        }
        guard let key = request.header("Sec-WebSocket-Key")?.trimmingCharacters(in: .whitespaces),
            key.utf8.count == 24, key.hasSuffix("==")
        else {
            return answer(
                connection, FrontendError(400, "bad_handshake", "Sec-WebSocket-Key must be 16 base64-encoded bytes"))
        }
        connection.acceptWebSocket(key: key)
        hub.add(connection, firehose: claims?.has("ws:all") ?? true, expiresAt: claims?.expires)
        reportWebSockets()
        logger.debug("WebSocket \(connection.id) connected (\(hub.count) open)")
    }

    public func webSocketMessage(
        _ kind: WebSocketMessageKind, _ bytes: UnsafeRawBufferPointer, on connection: Connection
    ) {
        switch kind {
        case .text:
            guard UTF8Validator.isValid(bytes) else {
                connection.close(code: 1007, reason: "text frame is not valid UTF-8")
                return
            }
            let text = String(decoding: bytes, as: UTF8.self)
            if !hub.command(text, from: connection.id) { logger.info("Received WebSocket data: \(text)") }
        case .binary:
            hub.heard(from: connection.id)
            logger.info("Received WebSocket binary message of \(bytes.count) bytes")
        }
    }

    public func webSocketFailed(_ error: WebSocketError, on connection: Connection) {
        let tooBig = error == .tooBig
        logger.info("WebSocket \(connection.id) protocol error \(error); closing")
        connection.close(code: tooBig ? 1009 : 1002, reason: tooBig ? "message too big" : "protocol error")
    }

    public func webSocketClosed(code: Int, on connection: Connection) {
        logger.debug("WebSocket \(connection.id) closed by client with \(code)")
    }

    public func connectionClosed(_ id: UInt64) {
        hub.remove(id)
        taskAPI.connectionClosed(id)
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
        metrics.watchedTasks(loop: loopIndex, resultWatch.watchedTasks)
        shared.setRedisPending(loop: loopIndex, redis.pending)
        guard loopIndex == 0 else { return }
        let connections = server?.openConnections ?? 0
        let pending = shared.redisPending
        let sockets = shared.webSockets
        var depths: [String: Int] = [:]
        let queues = shared.queues
        var left = queues.count
        for q in queues {
            redis.send(QueueDepth.command(queue: q)) {
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
}
