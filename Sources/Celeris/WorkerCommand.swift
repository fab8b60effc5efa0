import ArgumentParser
import FastCore
import Foundation
import Metrics
import Prometheus

/// The `celeris-worker` command line, run around the tasks `CelerisWorker.main` was given.
struct WorkerCommand: ParsableCommand {
    /// What `CelerisWorker.main` registers (set once, before parsing).
    static let tasks = LockedBox<(registry: TaskRegistry, routes: TaskRoutes)>((TaskRegistry(), TaskRoutes()))

    static let configuration = CommandConfiguration(
        commandName: "celeris-worker",
        abstract: "Run Celery-compatible tasks from Redis queues.",
        discussion: "Example: celeris-worker -b redis://127.0.0.1:6379/0 -Q celery,extract_queue -c 4")

    @Option(name: [.short, .long], help: "Broker URL (default: $CELERIS_BROKER_URL or redis://127.0.0.1:6379/0).")
    var broker: String?

    @Option(name: [.customShort("Q"), .long], help: "Comma-separated queues to consume.")
    var queues: String = "celery"

    @Option(name: [.short, .long], help: "Tasks running at once (blocking ones on threads, async ones on none).")
    var concurrency: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Messages held per slot (running and claimed ahead), as Celery's worker_prefetch_multiplier.",
            discussion:
                "Default: sized from the tasks' run times, each slot holding its task plus at most 4 ms of queued work (short tasks are claimed up to 256 per slot, long ones about one per free slot, so other workers get them)."
        ))
    var prefetchMultiplier: Int?

    @Option(
        name: [.customShort("n"), .long],
        help: "Node name; %h host, %n short host, %d domain, %p pid (default celeris-%p@%h: unique per process).")
    var hostname: String?

    @Flag(name: [.customShort("E"), .customLong("task-events")], help: "Send task and worker events (for Flower).")
    var taskEvents = false

    @Option(name: .long, help: "Grow and shrink the pool between MAX,MIN slots with the load, e.g. 10,3.")
    var autoscale: String?

    @Option(name: .long, help: "Seconds of lower load before autoscale shrinks the pool.")
    var autoscaleKeepalive: Double = 30

    @Option(name: .long, help: "Serve Prometheus metrics on this port (GET /metrics).")
    var metricsPort: Int?

    @Option(name: .long, help: "Address for --metrics-port.")
    var metricsHost: String = "0.0.0.0"

    @Option(
        name: .long,
        help:
            "Broker socket and file I/O: uring, socket (plain send/recv and read(2)) or auto (io_uring unless refused). Default $CELERIS_IO or auto."
    )
    var io: String?

    @Option(name: .long, help: "Route tasks sent by tasks: PATTERN=QUEUE (repeatable; globs allowed).")
    var route: [String] = []

    @Option(name: .long, help: "JSON file of routes: {\"task_routes\": {\"pattern\": \"queue\"}}.")
    var routes: String?

    @Flag(name: .long, help: "Print the Celeris version and exit.")
    var version = false

    @Option(name: [.short, .long], help: "debug, info, warning, error, critical.")
    var loglevel: String = "info"

    @Option(name: .long, help: "Seconds create_task sleeps per step (default: $CELERIS_STEP_SECONDS or 1).")
    var stepSeconds: Double?

    @Option(
        name: .long, help: "Seconds before a dead worker's deliveries return to their queues (kombu's default 3600).")
    var visibilityTimeout: Double = 3600

    @Option(
        name: .long,
        help:
            "How deliveries are claimed: script (one Lua script per batch; any worker, Celery's included, restores a dead worker's deliveries) or move (each batch moved to the worker's claiming list in one transaction, records written by the worker: less Redis CPU per task; a worker killed between a claim and its records leaves that batch for Celeris workers to restore). Default $CELERIS_CLAIM or script."
    )
    var claim: String?

    @Option(
        name: .long,
        help:
            "The directory document tasks may list and read (resolved with symlinks; nothing outside it is read or told of). Default $CELERIS_DOCUMENTS_ROOT; with neither, document tasks read nothing."
    )
    var documentsRoot: String?

    @Option(name: .long, help: "Largest document extract_data_task reads, in bytes (default 67108864: 64 MiB).")
    var maxDocumentBytes: Int = FileReader.defaultMaxBytes

    @Option(
        name: .long,
        help:
            "Threads stuck in tasks past their hard time limit at which the worker restarts warm: it stops claiming, returns what has not started, finishes what runs and exits with status 75 for its supervisor to start it again (0: never)."
    )
    var maxAbandonedThreads: Int = 4

    @Option(
        name: .long,
        help:
            "Times a message may go back to its queue after its worker stopped without acknowledging it (crashed, killed, lost its connection) before it goes to the dead-letter list with the reason instead (Celery has no limit; negative: none)."
    )
    var maxRedeliveries: Int = RedeliveryLimit.defaultMax

    @Option(
        name: .long,
        help: "Largest message decoded, in bytes; a larger one is dead-lettered unread (default 67108864: 64 MiB).")
    var maxMessageBytes: Int = TaskMessage.defaultMaxBytes

    @Option(
        name: .long,
        help: "Bytes one claim takes at most (it always takes one message; default 67108864: 64 MiB).")
    var maxClaimBytes: Int = DeliveryClaim.defaultClaimBytes

    @Option(
        name: .long,
        help:
            "Seconds task results live in Redis (Celery's result_expires; a task's own resultExpires wins; 0: never expire). Default 86400."
    )
    var resultExpires: Double = Double(ResultRecord.expirySeconds)

    /// `--claim`, else `$CELERIS_CLAIM`, else the script claim.
    var claimMode: String { claim ?? ProcessInfo.processInfo.environment["CELERIS_CLAIM"] ?? "script" }

    func validate() throws {
        guard concurrency >= 1, concurrency <= 4096 else { throw ValidationError("--concurrency must be 1...4096") }
        if let m = prefetchMultiplier, m < 1 { throw ValidationError("--prefetch-multiplier must be at least 1") }
        if let problem = CommandSetup.checkLogLevel(loglevel) { throw ValidationError(problem) }
        guard !queueList.isEmpty else { throw ValidationError("--queues names no queue") }
        guard ["script", "move"].contains(claimMode) else { throw ValidationError("--claim must be script or move") }
        guard visibilityTimeout >= 1 else { throw ValidationError("--visibility-timeout must be at least 1 second") }
        guard maxMessageBytes >= 1024 else { throw ValidationError("--max-message-bytes must be at least 1024") }
        guard maxClaimBytes >= 1 else { throw ValidationError("--max-claim-bytes must be at least 1") }
        guard ResultRecord.expiry(seconds: resultExpires) != nil else {
            throw ValidationError("--result-expires must be a number of seconds ≥ 0")
        }
        if autoscale != nil && autoscaleRange == nil { throw ValidationError("--autoscale takes MAX,MIN, e.g. 10,3") }
        if let io, IOMode(rawValue: io) == nil { throw ValidationError("--io takes uring, socket or auto") }
    }

    /// `MAX,MIN` (or a single MAX, with MIN 1).
    var autoscaleRange: (max: Int, min: Int)? {
        guard let autoscale else { return nil }
        let parts = autoscale.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard let max = parts.first ?? nil, max >= 1, parts.count <= 2 else { return nil }
        let min = parts.count == 2 ? parts[1] : 1
        guard let min, min >= 1, min <= max else { return nil }
        return (max, min)
    }

    /// The node name with Celery's %-substitutions.
    func nodeName() -> String {
        let host = ProcessInfo.processInfo.hostName
        let short = String(host.split(separator: ".").first ?? Substring(host))
        let domain = host.split(separator: ".").dropFirst().joined(separator: ".")
        let pid = String(ProcessInfo.processInfo.processIdentifier)
        return (hostname ?? "celeris-%p@%h").replacingOccurrences(of: "%h", with: host)
            .replacingOccurrences(of: "%n", with: short).replacingOccurrences(of: "%d", with: domain)
            .replacingOccurrences(of: "%p", with: pid)
    }

    var queueList: [String] {
        queues.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func run() throws {
        if version {
            print("celeris \(CelerisVersion.current)")
            return
        }
        // Logging to stderr, the broker from -b or $CELERIS_BROKER_URL, and SIGPIPE ignored: a write
        // to a connection Redis has closed is an error the consumer handles (it reconnects and
        // sends again), not a reason for the process to die.
        let node = nodeName()
        let setup: CommandSetup
        do { setup = try CommandSetup(label: node, loglevel: loglevel, broker: broker) } catch {
            throw ValidationError(error.description)
        }
        let (env, endpoint, logger) = (setup.environment, setup.endpoint, setup.logger)
        let step = stepSeconds ?? env["CELERIS_STEP_SECONDS"].flatMap(Double.init) ?? 1

        let ioMode = IOMode(rawValue: io ?? env["CELERIS_IO"] ?? "auto") ?? .auto
        let reader = FileReader(mode: ioMode)
        do { try reader.validate() } catch { throw ValidationError("\(error)") }
        // Said once, at start-up: under a container's default seccomp profile the kernel
        // refuses io_uring, and the broker connection and file reads use plain syscalls.
        if let refused = reader.probe() { logger.info("io_uring refused (\(refused)): using sockets and read(2)") }
        FileReader.shared.set(reader)
        do {
            try DocumentPolicy.configure(
                root: documentsRoot ?? env["CELERIS_DOCUMENTS_ROOT"], maxBytes: maxDocumentBytes)
        } catch { throw ValidationError("\(error)") }

        let (registry, baseRoutes) = Self.tasks.get()
        var config = WorkerConfiguration(
            endpoint: endpoint, queues: queueList, concurrency: concurrency, prefetchMultiplier: prefetchMultiplier,
            hostname: node, stepSeconds: step, visibilityTimeout: visibilityTimeout, events: taskEvents,
            autoscale: autoscaleRange, autoscaleKeepalive: autoscaleKeepalive, metrics: metricsPort != nil)
        config.redisIO = ioMode
        config.claimByMove = claimMode == "move"
        config.maxAbandonedThreads = max(0, maxAbandonedThreads)
        config.maxRedeliveries = maxRedeliveries
        config.maxMessageBytes = maxMessageBytes
        config.maxClaimBytes = maxClaimBytes
        config.resultExpires = ResultRecord.expiry(seconds: resultExpires) ?? ResultRecord.expirySeconds
        let running = LockedBox<Consumer?>(nil)
        if let metricsPort {
            let prometheus = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: prometheus))
            // /health: 503 "starting" until the consumer exists, then its readiness.
            let health: MetricsServer.Health = {
                guard let h = running.get()?.health else {
                    return (503, ["status": "unavailable", "reason": "starting"])
                }
                return (h.status, h.json)
            }
            let bound = try MetricsServer.start(host: metricsHost, port: metricsPort, health: health) {
                prometheus.emitToString()
            }
            logger.info("metrics on http://\(metricsHost):\(bound)/metrics, readiness /health, liveness /livez")
        }
        do {
            config.routes = try TaskRoutes.fromCommandLine(flags: route, file: routes, base: baseRoutes)
        } catch {
            throw ValidationError("\(error)")
        }
        let consumer = Consumer(configuration: config, registry: registry, logger: logger)
        running.set(consumer)
        RemoteControlListener(endpoint: endpoint, logger: logger, clock: config.clock) { consumer.control($0) }.start()

        let signals = ShutdownSignals(signals: [SIGINT, SIGTERM, SIGQUIT]) { signo, count in
            if count == 1 && signo != SIGQUIT {
                logger.info("signal \(signo): warm shutdown, finishing running tasks (again to quit now)")
                consumer.stop()
            } else {
                logger.warning("signal \(signo): cold shutdown, returning every held message to its queue")
                consumer.stopNow()
            }
        }
        logger.info(
            "\(node) ready: broker \(endpoint), queues \(queueList.joined(separator: ",")), \(autoscaleRange.map { "autoscale \($0.max),\($0.min)" } ?? "concurrency \(concurrency)"), events \(taskEvents ? "on" : "off"), io \(reader.usesUring ? "io_uring" : "sockets, read(2)"), tasks \(registry.names.joined(separator: ", "))"
        )
        consumer.run()
        withExtendedLifetime(signals) {}
        // Threads still inside abandoned or cold-stopped tasks are not waited for.
        if consumer.stoppedForAbandonedThreads.get() { Foundation.exit(Consumer.abandonedThreadsExitStatus) }
        Foundation.exit(0)
    }
}
