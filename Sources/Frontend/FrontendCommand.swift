import ArgumentParser
import FastCore
import Foundation
import Metrics
import Prometheus

/// `celeris-frontend`: HTTP/1.1 + WebSocket front door that enqueues Celery tasks.
@main
struct FrontendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "celeris-frontend",
        abstract: "Serve POST /tasks, GET /status/{id}, /ws and /health over a Celery Redis broker.",
        discussion: "Example: celeris-frontend -b redis://127.0.0.1:6379/0 --port 8000")

    @Option(name: [.short, .long], help: "Broker URL (default: $CELERIS_BROKER_URL or redis://127.0.0.1:6379/0).")
    var broker: String?

    @Option(name: .long, help: "Address to listen on.")
    var host: String = "0.0.0.0"

    @Option(name: .long, help: "Event loops (threads) sharing the port through SO_REUSEPORT (default: one per CPU).")
    var loops: Int?

    @Option(name: .long, help: "Port to listen on (0 picks a free one).")
    var port: Int = 8000

    @Option(name: [.short, .long], help: "debug, info, warning, error, critical.")
    var loglevel: String = "info"

    @Option(name: .long, help: "Steps of create_task when POST /tasks names none.")
    var defaultTaskLength: Int = 5

    @Option(name: .long, help: "Largest request body in bytes (413 above).")
    var maxBodyBytes: Int = 1 << 20

    @Option(name: .long, help: "Largest request head in bytes (431 above).")
    var maxHeaderBytes: Int = 16 * 1024

    @Option(name: .long, help: "Largest WebSocket message in bytes (close 1009 above).")
    var maxWsMessageBytes: Int = 1 << 20

    @Option(name: .long, help: "Milliseconds a started request may take to arrive (slowloris → 408).")
    var headerTimeoutMs: Int = 10_000

    @Option(name: .long, help: "Milliseconds an idle keep-alive connection is kept.")
    var idleTimeoutMs: Int = 60_000

    @Option(name: .long, help: "Open connections (all loops together) beyond which new ones get 503.")
    var maxConnections: Int = 10_000

    @Option(
        name: .long, help: "Redis commands awaiting replies on one loop's connection beyond which requests get 503.")
    var maxPendingRedis: Int = 10_000

    @Option(name: .long, help: "Output bytes queued for one client beyond which it is not read until it takes half.")
    var maxQueuedOutputBytes: Int = 256 * 1024

    @Option(
        name: .long, help: "Milliseconds a Redis reply may be owed before the link is dropped and requests get 503.")
    var redisTimeoutMs: Int = 5000

    @Option(name: .long, help: "TCP keepalive idle seconds on the Redis connections (0: off).")
    var redisKeepaliveSeconds: Int = 15

    @Option(name: .long, help: "Milliseconds between PINGs on an idle Redis connection (0: off).")
    var redisHeartbeatMs: Int = 1000

    @Option(name: .long, help: "WebSocket output bytes above which a client gets final states only.")
    var wsSoftLimitBytes: Int = 64 * 1024

    @Option(name: .long, help: "WebSocket output bytes above which a client is closed (1013).")
    var wsHardLimitBytes: Int = 4 * 1024 * 1024

    @Option(name: .long, help: "Seconds over the soft limit before a client is closed (1008).")
    var wsStuckSeconds: Double = 10

    @Option(name: .long, help: "Milliseconds between WebSocket pings.")
    var wsPingMs: Int = 20_000

    @Option(name: .long, help: "Milliseconds of WebSocket silence before closing (1001).")
    var wsIdleMs: Int = 60_000

    @Option(
        name: .long,
        help: "Require HMAC-signed bearer tokens made with this secret (default: $CELERIS_AUTH_SECRET; off when unset)."
    )
    var authSecret: String?

    @Option(name: .long, help: "Print a token for SUBJECT (with --auth-secret) and exit.")
    var issueToken: String?

    @Option(name: .long, help: "Seconds an issued token is valid.")
    var tokenTtl: Double = 3600

    @Option(
        name: .long,
        help:
            "Scopes of an issued token: tasks,process,status,ws or *; tasks:NAME allows only task NAME, ws:all every task's updates."
    )
    var tokenScope: String = "*"

    @Option(name: .long, help: "Route tasks with no queue in the request: PATTERN=QUEUE (repeatable; globs allowed).")
    var route: [String] = []

    @Option(name: .long, help: "JSON file of routes: {\"task_routes\": {\"pattern\": \"queue\"}}.")
    var routes: String?

    @Option(
        name: .long,
        help: "Also allow POST /tasks to send this task (repeatable; globs allowed). Always allowed: create_task, add.")
    var allowTask: [String] = []

    @Option(name: .long, help: "File of task names (or globs) POST /tasks may send, one a line (# comments).")
    var allowTasksFile: String?

    @Option(name: .long, help: "Most steps a create_task sent through POST /tasks may ask for.")
    var maxTaskLength: Int = 1000

    @Option(name: .long, help: "A queue clients may name besides celery and the routed ones (repeatable).")
    var allowQueue: [String] = []

    @Option(
        name: .long,
        help:
            "Host name requests may name in Host (repeatable; globs). Default: any, or only localhost/127.0.0.1/::1 when --host is loopback."
    )
    var allowedHost: [String] = []

    @Option(
        name: .long,
        help: "Browser Origin allowed besides this server's own, e.g. https://app.example (repeatable; * for any).")
    var allowOrigin: [String] = []

    @Option(name: .long, help: "Most task ids one WebSocket subscribe message may name.")
    var wsMaxIdsPerMessage: Int = 100

    @Option(name: .long, help: "Most tasks one WebSocket may be subscribed to.")
    var wsMaxSubscriptions: Int = 1000

    @Flag(
        name: .long,
        help: "No task_status fan-out: WebSocket clients get only the tasks they subscribe to.")
    var noFirehose = false

    @Option(name: .long, help: "Most tasks one loop follows at once for WebSocket subscriptions (beyond: refused).")
    var maxWatchedTasks: Int = 100_000

    @Option(
        name: .long,
        help:
            "Answer POST /tasks and /process only once this many replicas hold the task (Redis WAIT; fewer: 503 not_replicated). Default: $CELERIS_DURABLE_ENQUEUE or 0 (off)."
    )
    var durableEnqueue: Int?

    @Option(
        name: .long, help: "Milliseconds the durable enqueue's WAIT waits for the replicas (below --redis-timeout-ms).")
    var durableTimeoutMs: Int = 1000

    /// `--durable-enqueue`, else `$CELERIS_DURABLE_ENQUEUE`, else 0; nil when the variable is not a count.
    var durableReplicas: Int? {
        if let durableEnqueue { return durableEnqueue }
        guard let text = ProcessInfo.processInfo.environment["CELERIS_DURABLE_ENQUEUE"], !text.isEmpty else { return 0 }
        return Int(text.trimmingCharacters(in: .whitespaces))
    }

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        if let problem = CommandSetup.checkLogLevel(loglevel) { throw ValidationError(problem) }
        guard defaultTaskLength >= 0 else { throw ValidationError("--default-task-length must be >= 0") }
        if let loops, !(1...256).contains(loops) { throw ValidationError("--loops must be 1...256") }
        guard maxTaskLength >= 0 else { throw ValidationError("--max-task-length must be >= 0") }
        guard defaultTaskLength <= maxTaskLength else {
            throw ValidationError("--default-task-length must be <= --max-task-length (\(maxTaskLength))")
        }
        for q in allowQueue where !TaskPolicy.isValidQueueName(q) {
            throw ValidationError("--allow-queue '\(q)': 1 to 200 characters of A-Z a-z 0-9 _ . : @ -")
        }
        guard wsMaxIdsPerMessage >= 1, wsMaxSubscriptions >= 1 else {
            throw ValidationError("--ws-max-ids-per-message and --ws-max-subscriptions must be >= 1")
        }
        guard let replicas = durableReplicas, (0...1000).contains(replicas) else {
            throw ValidationError("--durable-enqueue (or $CELERIS_DURABLE_ENQUEUE) must be a replica count 0...1000")
        }
        guard durableTimeoutMs >= 1 else { throw ValidationError("--durable-timeout-ms must be >= 1") }
        if replicas > 0, redisTimeoutMs > 0, durableTimeoutMs >= redisTimeoutMs {
            throw ValidationError(
                "--durable-timeout-ms (\(durableTimeoutMs)) must be below --redis-timeout-ms (\(redisTimeoutMs)): "
                    + "a WAIT that long would count as a stalled link")
        }
    }

    func run() throws {
        let secret = authSecret ?? ProcessInfo.processInfo.environment["CELERIS_AUTH_SECRET"]
        if let subject = issueToken {
            guard let secret, !secret.isEmpty else { throw ValidationError("--issue-token needs --auth-secret") }
            let scopes = tokenScope.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            print(BearerAuth(secret: secret).issue(subject: subject, ttl: tokenTtl, scopes: scopes))
            return
        }
        let setup: CommandSetup
        do { setup = try CommandSetup(label: "celeris-frontend", loglevel: loglevel, broker: broker) } catch {
            throw ValidationError(error.description)
        }
        let (endpoint, logger) = (setup.endpoint, setup.logger)

        var settings = FrontendApp.Settings()
        settings.defaultTaskLength = defaultTaskLength
        settings.limits = HTTPServer.Limits(
            maxHeaderBytes: maxHeaderBytes, maxBodyBytes: maxBodyBytes, maxWebSocketMessageBytes: maxWsMessageBytes,
            headerTimeoutMs: headerTimeoutMs, idleTimeoutMs: idleTimeoutMs, maxConnections: maxConnections)
        settings.maxPendingRedis = maxPendingRedis
        settings.limits.maxQueuedOutputBytes = maxQueuedOutputBytes
        let redisOptions = AsyncRedis.Options(
            commandTimeoutMs: UInt64(max(0, redisTimeoutMs)), keepAliveSeconds: max(0, redisKeepaliveSeconds),
            heartbeatMs: UInt64(max(0, redisHeartbeatMs)))
        if let secret, !secret.isEmpty { settings.auth = BearerAuth(secret: secret) }
        let prometheus = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: prometheus))
        settings.renderMetrics = { prometheus.emitToString() }
        settings.webSockets = WebSocketHub.Settings(
            softLimitBytes: wsSoftLimitBytes, hardLimitBytes: wsHardLimitBytes, stuckSeconds: wsStuckSeconds,
            pingIntervalMs: UInt64(max(50, wsPingMs)), idleMs: UInt64(max(100, wsIdleMs)))
        settings.webSockets.maxIdsPerMessage = wsMaxIdsPerMessage
        settings.webSockets.maxSubscriptions = wsMaxSubscriptions
        settings.webSockets.firehose = !noFirehose
        settings.maxWatchedTasks = max(1, maxWatchedTasks)
        settings.durableReplicas = durableReplicas ?? 0
        settings.durableTimeoutMs = durableTimeoutMs
        settings.tasks.allowedTasks += allowTask
        if let allowTasksFile {
            guard let text = try? String(contentsOfFile: allowTasksFile, encoding: .utf8) else {
                throw ValidationError("cannot read --allow-tasks-file \(allowTasksFile)")
            }
            settings.tasks.allowedTasks += text.split(whereSeparator: \.isNewline).map {
                $0.trimmingCharacters(in: .whitespaces)
            }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        }
        settings.tasks.maxTaskLength = maxTaskLength
        settings.tasks.allowedQueues = Set(allowQueue)
        settings.allowedHosts = allowedHost
        settings.allowedOrigins = allowOrigin
        do {
            settings.routes = try TaskRoutes.fromCommandLine(flags: route, file: routes, base: DocumentTasks.routes)
        } catch {
            throw ValidationError("\(error)")
        }
        let frontend = try FrontendLoops(
            count: loops ?? ProcessInfo.processInfo.activeProcessorCount, endpoint: endpoint,
            redisOptions: redisOptions, settings: settings, logger: logger)
        let bound = try frontend.start(host: host, port: port)
        // The first SIGINT/SIGTERM shuts every loop down gracefully, a second one stops at once.
        let signals = ShutdownSignals { _, count in
            if count == 1 {
                logger.info(
                    "shutting down: no new connections, WebSockets closed with 1001, finishing requests in flight")
                frontend.requestStop()
            } else {
                frontend.requestStopNow()
            }
        }
        logger.info(
            "celeris-frontend listening on http://\(host):\(bound) with \(frontend.count) loop(s) (broker \(endpoint))")
        frontend.run()
        withExtendedLifetime(signals) {}
    }
}
