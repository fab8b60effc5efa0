import Foundation

/// How a `Scheduler` runs: its broker, its id, the leader lease, how often the schedule is
/// checked for changes, and the clock due times are read from.
///
///     var config = BeatConfiguration(endpoint: endpoint, schedulePath: "schedule.json")
///     config.leaseMs = 5000
///     let scheduler = Scheduler(configuration: config, logger: logger)
public struct BeatConfiguration: Sendable {
    /// The Redis the scheduler sends to and keeps its state in.
    public var endpoint: RedisEndpoint
    /// The scheduler's id in `celeris:beat:leader` and `celeris:beat:schedulers`.
    public var id: String
    /// The schedule file (nil: none; run-time entries only).
    public var schedulePath: String?
    /// Whether run-time entries (`celeris:beat:dynamic`) are scheduled too.
    public var readsRedisEntries: Bool
    /// The leader lease in ms; renewed every third of it. A killed leader is replaced within
    /// `leaseMs + leaseMs / 3`.
    public var leaseMs: Int64
    /// Seconds between checks of the file's stat and of the run-time entries' version.
    public var reloadInterval: Double
    /// Where due times are read from (a `ManualClock` in tests); leases run on Redis's clock.
    public var clock: any WallClock
    /// Whether metrics are recorded (`BeatMetrics`).
    public var metrics: Bool

    /// The default lease, 3 s.
    public static let defaultLeaseMs: Int64 = 3000
    /// The shortest lease accepted (a third of it is the renew period).
    public static let shortestLeaseMs: Int64 = 300

    /// A configuration with the defaults of `celeris-beat`.
    ///
    ///     BeatConfiguration(endpoint: try RedisEndpoint.broker(flag: nil))
    public init(
        endpoint: RedisEndpoint, id: String = BeatConfiguration.schedulerId(), schedulePath: String? = nil,
        readsRedisEntries: Bool = true, leaseMs: Int64 = BeatConfiguration.defaultLeaseMs, reloadInterval: Double = 1,
        clock: any WallClock = SystemClock(), metrics: Bool = false
    ) {
        self.endpoint = endpoint
        self.id = id
        self.schedulePath = schedulePath
        self.readsRedisEntries = readsRedisEntries
        self.leaseMs = leaseMs
        self.reloadInterval = reloadInterval
        self.clock = clock
        self.metrics = metrics
    }

    /// `beat@<hostname>:<pid>:<4 random hex>`; `node` replaces the `beat@<hostname>` part.
    ///
    ///     BeatConfiguration.schedulerId(node: "beat@eu-1")  // "beat@eu-1:4242:9f3a"
    public static func schedulerId(node: String? = nil) -> String {
        let pid = ProcessInfo.processInfo.processIdentifier
        let hex = String(UInt16.random(in: 0...UInt16.max), radix: 16)
        let padded = String(repeating: "0", count: 4 - hex.count) + hex
        return "\(node ?? "beat@" + ProcessInfo.processInfo.hostName):\(pid):\(padded)"
    }

    /// The longest lease accepted (one day).
    public static let longestLeaseMs: Int64 = 86_400_000

    /// This configuration with its numbers brought into range, so no value can trap or spin a
    /// scheduler: `leaseMs` within `shortestLeaseMs...longestLeaseMs`, `reloadInterval` within
    /// 0.01...3600 s (not a number: 1 s). `Scheduler.init` applies it.
    ///
    ///     let safe = BeatConfiguration(endpoint: ep, leaseMs: 0).clamped()  // leaseMs 300
    public func clamped() -> BeatConfiguration {
        var c = self
        c.leaseMs = min(max(leaseMs, Self.shortestLeaseMs), Self.longestLeaseMs)
        c.reloadInterval = reloadInterval.isNaN ? 1 : min(max(reloadInterval, 0.01), 3600)
        return c
    }

    /// The renew (and standby acquire) period in seconds: a third of the lease.
    var renewSeconds: Double { Double(leaseMs) / 3000 }
}
