import ArgumentParser
import FastCore
import Foundation
import Metrics
import Prometheus

/// The `celeris-beat` command line: a periodic-task scheduler; run any number of them on one
/// Redis, one leads and sends each due time once.
struct BeatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "celeris-beat",
        abstract: "Send periodic tasks (Celery beat's messages); run several for failover, one sends each due time.",
        discussion: "Example: celeris-beat -b redis://127.0.0.1:6379/0 -s schedule.json")

    @Option(name: [.short, .long], help: "Broker URL (default: $CELERIS_BROKER_URL or redis://127.0.0.1:6379/0).")
    var broker: String?

    @Option(name: [.short, .long], help: "Schedule file (JSON beat_schedule), reloaded when it changes.")
    var schedule: String?

    @Flag(name: .long, help: "Do not schedule run-time entries (celeris:beat:dynamic, the frontend's /schedule).")
    var noRedisEntries = false

    @Option(name: .long, help: "Leader lease in ms; a killed leader is replaced within lease + lease/3.")
    var leaseMs: Int64 = BeatConfiguration.defaultLeaseMs

    @Option(name: .long, help: "Seconds between checks of the schedule file and of the run-time entries.")
    var reloadInterval: Double = 1.0

    @Option(
        name: [.customShort("n"), .long], help: "Replaces beat@<host> in the scheduler id beat@<host>:<pid>:<hex>.")
    var hostname: String?

    @Option(name: .long, help: "Serve Prometheus metrics on this port (GET /metrics).")
    var metricsPort: Int?

    @Option(name: .long, help: "Address for --metrics-port.")
    var metricsHost: String = "0.0.0.0"

    @Option(name: [.short, .long], help: "debug, info, warning, error, critical.")
    var loglevel: String = "info"

    @Flag(name: .long, help: "Print the Celeris version and exit.")
    var version = false

    func validate() throws {
        if let problem = CommandSetup.checkLogLevel(loglevel) { throw ValidationError(problem) }
        guard leaseMs >= BeatConfiguration.shortestLeaseMs, leaseMs <= 3_600_000 else {
            throw ValidationError("--lease-ms must be \(BeatConfiguration.shortestLeaseMs)...3600000")
        }
        guard reloadInterval.isFinite, reloadInterval >= 0.01, reloadInterval <= 3600 else {
            throw ValidationError("--reload-interval must be 0.01...3600 seconds")
        }
        if let hostname, hostname.isEmpty { throw ValidationError("--hostname must not be empty") }
    }

    func run() throws {
        if version {
            print("celeris \(CelerisVersion.current)")
            return
        }
        let id = BeatConfiguration.schedulerId(node: hostname)
        let setup: CommandSetup
        do { setup = try CommandSetup(label: id, loglevel: loglevel, broker: broker) } catch {
            throw ValidationError(error.description)
        }
        let logger = setup.logger
        if let metricsPort {
            let prometheus = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: prometheus))
            let bound = try MetricsServer.start(host: metricsHost, port: metricsPort) { prometheus.emitToString() }
            logger.info("metrics on http://\(metricsHost):\(bound)/metrics")
        }
        let config = BeatConfiguration(
            endpoint: setup.endpoint, id: id, schedulePath: schedule, readsRedisEntries: !noRedisEntries,
            leaseMs: leaseMs, reloadInterval: reloadInterval, metrics: metricsPort != nil)
        let scheduler = Scheduler(configuration: config, logger: logger)
        let signals = ShutdownSignals(signals: [SIGINT, SIGTERM]) { signo, count in
            if count == 1 {
                logger.info("signal \(signo): warm shutdown, handing the leadership over")
                scheduler.shutdown()
            } else {
                logger.warning("signal \(signo): exiting now")
                Foundation.exit(1)
            }
        }
        // A schedule file that cannot be read or parsed stops the command (exit 1), checked before
        // Redis is reached; Redis being down is retried by run().
        if let schedule {
            do { _ = try ScheduleFile.load(path: schedule) } catch {
                logger.critical("schedule \(schedule): \(error)")
                Foundation.exit(1)
            }
        }
        do {
            try scheduler.start()
        } catch let error as ScheduleFileError {
            logger.critical("schedule \(schedule ?? "-"): \(error)")
            Foundation.exit(1)
        } catch {
            logger.error("beat \(id): \(error); retrying")
        }
        scheduler.run()
        withExtendedLifetime(signals) {}
        Foundation.exit(0)
    }
}
