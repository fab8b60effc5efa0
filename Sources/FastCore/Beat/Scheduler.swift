import Dispatch
import Foundation
import Logging

/// The periodic-task scheduler behind `celeris-beat`: any number of them may run on one Redis;
/// one leads (the leader lease, `BeatLease`) and sends every entry's due times, each exactly once
/// (`BeatScripts.send` is the fence); the others stand by, waiting on the hand-over list, and
/// take over within `leaseMs + leaseMs / 3` of a killed leader, or at once after a warm release.
///
/// A `turn()` is one pass at the clock's now: connect (and measure Redis's clock), load or reload
/// the schedule, renew or acquire the lease, and as leader send what is due. `run()` loops over
/// turns until `shutdown()`, reconnecting with backoff after Redis errors; then it releases the
/// lease (hand-over) and leaves the schedulers set.
///
///     let scheduler = Scheduler(configuration: BeatConfiguration(endpoint: ep, schedulePath: "schedule.json"))
///     try scheduler.start()                       // connect, load (a bad file throws), register
///     let signals = ShutdownSignals { _, _ in scheduler.shutdown() }
///     scheduler.run()
public final class Scheduler: @unchecked Sendable {
    /// One scheduled entry and what this scheduler knows of its state.
    struct Tracked {
        var entry: ScheduleEntry
        /// The entry's compiled beat envelope (made when the entry is added or changed).
        var template: BeatEnvelope
        let due: DueSchedule
        var source: String
        /// The recorded due time (Redis's `due`); nil until read as leader.
        var handled: Int64?
        /// When the entry should be planned next (ms, Redis time).
        var next: Int64
        /// Since when this process has seen the entry as it is (ms, Redis time): its start, or the
        /// reload that brought the entry or changed its schedule. Due times before it are missed
        /// ones (they follow `catch_up`), not a backlog to send one by one.
        var seenFrom: Int64 = .min
        /// Send script failures in a row (the entry backs off: 1 s, doubling to 60 s).
        var failures = 0
    }

    public let configuration: BeatConfiguration
    let logger: Logger
    let metrics: BeatMetrics
    let source: ScheduleSource
    let lease: BeatLease
    let sender: BeatSender
    let leaseClock: LeaseClock
    var redis: RedisConnection?
    var entries: [String: Tracked] = [:]
    var heap = BeatHeap()
    /// When this scheduler started, ms on Redis's clock (set at its first connection); due
    /// times before it follow the entries' `catch_up`.
    ///
    ///     try scheduler.start(); let started = scheduler.startedAt!
    public private(set) var startedAt: Int64?
    /// Whether the schedule was loaded (`start`).
    var loaded = false
    /// Whether, as leader, the entries' state was read from Redis since the last change
    /// (leadership taken, reload, reconnect).
    var synced = false
    /// When the lease is next renewed or tried, and the heartbeat sent (monotonic ns).
    var nextLeaseCheck: UInt64 = 0
    /// Shutdown asked, and the socket a standby waits on in BLPOP (shut down to wake it).
    private let control = LockedBox<(stopping: Bool, blockingSocket: Int32?)>((false, nil))
    private let wake = DispatchSemaphore(value: 0)

    /// A scheduler reading its entries from `configuration`'s file and run-time entries.
    ///
    ///     let scheduler = Scheduler(configuration: config, logger: Logger(label: "beat"))
    /// The configuration's numbers are clamped (`BeatConfiguration.clamped()`; logged when changed).
    public init(configuration given: BeatConfiguration, logger: Logger = Logger(label: "celeris.beat")) {
        let configuration = given.clamped()
        if configuration.leaseMs != given.leaseMs || configuration.reloadInterval != given.reloadInterval {
            logger.warning(
                "beat: lease \(given.leaseMs) ms, reload interval \(given.reloadInterval) s out of range; using \(configuration.leaseMs) ms, \(configuration.reloadInterval) s"
            )
        }
        self.configuration = configuration
        self.logger = logger
        metrics = BeatMetrics(enabled: configuration.metrics)
        source = ScheduleSource(
            file: configuration.schedulePath, readsRedis: configuration.readsRedisEntries, clock: configuration.clock,
            reloadInterval: configuration.reloadInterval, logger: logger)
        lease = BeatLease(id: configuration.id, leaseMs: configuration.leaseMs, metrics: metrics)
        sender = BeatSender(id: configuration.id, stampsRedisTime: !(configuration.clock is ManualClock))
        leaseClock = LeaseClock(clock: configuration.clock)
    }

    /// The scheduler's id (`celeris:beat:leader`'s value while it leads).
    ///
    ///     logger.info("\(scheduler.id) ready")
    public var id: String { configuration.id }
    /// Whether this scheduler leads, as of its last turn.
    ///
    ///     _ = try scheduler.turn(); if scheduler.isLeader { ... }
    public var isLeader: Bool { lease.isLeader }
    /// The names of the entries scheduled, sorted.
    ///
    ///     print(scheduler.entryNames)  // ["cleanup", "tick"]
    public var entryNames: [String] { entries.keys.sorted() }

    /// Connect, load the schedule and register in the schedulers set; logs `beat <id> ready`.
    /// A schedule file that cannot be read or parsed throws `ScheduleFileError`; Redis
    /// failures throw `RedisError`. `turn()` calls it when it was not called.
    public func start() throws {
        guard !loaded else { return }
        let redis = try connection()
        let now = nowMs()
        if startedAt == nil { startedAt = now }
        let snapshot = try source.load(redis: redis)
        apply(snapshot)
        loaded = true
        metrics.leader(lease.isLeader)
        try lease.heartbeat(on: redis, now: now)
        logger.info(
            "beat \(id) ready: broker \(configuration.endpoint), \(entries.count) entries, lease \(configuration.leaseMs) ms"
        )
    }

    /// One pass at the clock's now: reload, lease, and (as leader) every due send. Returns the
    /// seconds until the next turn is wanted. Redis errors throw (the connection is dropped and
    /// made again on the next turn); an entry whose due time cannot be computed is dropped.
    public func turn() throws -> Double {
        do {
            return try turnOnce()
        } catch let error as RedisError {
            redis = nil
            throw error
        }
    }

    private func turnOnce() throws -> Double {
        try start()
        let redis = try connection()
        if leaseClock.isDue(configuration.clock.now()) { try leaseClock.measure(on: redis) }
        _ = try validNow()
        if let snapshot = source.reloadIfChanged(redis: redis, now: configuration.clock.now()) {
            metrics.reloaded()
            apply(snapshot)
        }
        if DispatchTime.now().uptimeNanoseconds >= nextLeaseCheck { try checkLease(redis: redis) }
        if lease.isLeader && !synced { try sync(redis: redis) }
        if lease.isLeader && synced { try sendDue(redis: redis) }
        return secondsToNextTurn()
    }

    /// Renew (as leader) or try to acquire the lease, and send the heartbeat; the next check is
    /// due a third of the lease later. Also called between send batches of a long catch-up.
    func checkLease(redis: RedisConnection) throws {
        let mono = DispatchTime.now().uptimeNanoseconds
        let now = nowMs()
        if lease.isLeader {
            if try !lease.renew(on: redis, now: now) { logger.warning("beat \(id) lost the leadership") }
        } else if try lease.acquire(on: redis, now: now) {
            logger.info("beat \(id) leads")
            synced = false
        }
        try lease.heartbeat(on: redis, now: now)
        nextLeaseCheck = mono + UInt64(configuration.renewSeconds * 1e9)
    }

    /// Turns until `shutdown()`; then the lease is released to a standby and this scheduler
    /// leaves the schedulers set. Redis errors are logged and retried with backoff (0.1 s
    /// doubling to 5 s).
    public func run() {
        var backoff = 0.1
        while !control.get().stopping {
            let wait: Double
            do {
                wait = try turn()
                backoff = 0.1
            } catch {
                logger.error("beat \(id): \(error); retrying in \(backoff) s")
                metrics.redisError()
                redis = nil
                _ = wake.wait(timeout: .now() + backoff)
                backoff = min(backoff * 2, 5)
                continue
            }
            if control.get().stopping { break }
            if !lease.isLeader, wait > 0, let redis {
                do {
                    if try waitForHandover(on: redis, seconds: min(wait, configuration.renewSeconds)) {
                        nextLeaseCheck = 0
                    }
                } catch {
                    self.redis = nil
                }
            } else if wait > 0 {
                _ = wake.wait(timeout: .now() + wait)
            }
        }
        finish()
    }

    /// Stop `run()` warm: a turn in progress finishes, then the lease is handed over. Callable
    /// from any thread (a signal handler's); a standby waiting in BLPOP is woken at once.
    public func shutdown() {
        control.modify { state in
            state.stopping = true
            // Under the lock: the run thread unregisters the socket (under it) before it can
            // close it, so this never shuts a closed, possibly reused, descriptor.
            if let socket = state.blockingSocket { _ = Foundation.shutdown(socket, Int32(SHUT_RDWR)) }
        }
        wake.signal()
    }

    /// Release the lease (if held) with a hand-over, and leave the schedulers set. A failure on
    /// the current connection (`shutdown()` may have shut its socket just as BLPOP returned) is
    /// retried once on a new one.
    func finish() {
        for attempt in 1...2 {
            do {
                if redis == nil { redis = try makeConnection() }
                if let redis { try lease.release(on: redis) }
                logger.info("beat \(id) stopped")
                break
            } catch {
                redis = nil
                if attempt == 2 { logger.warning("beat \(id) stopped without releasing: \(error)") }
            }
        }
        redis = nil
    }

    /// BLPOP on the hand-over list, unless shutdown was asked; the socket is registered so
    /// `shutdown()` can break the wait.
    private func waitForHandover(on redis: RedisConnection, seconds: Double) throws -> Bool {
        let socket = redis.socket
        let proceed = control.modify { state -> Bool in
            guard !state.stopping else { return false }
            state.blockingSocket = socket
            return true
        }
        guard proceed else { return false }
        defer { control.modify { $0.blockingSocket = nil } }
        return try lease.waitForHandover(on: redis, seconds: seconds)
    }

    // MARK: - Time and connection

    /// Now in ms on Redis's clock (`LeaseClock.redisNow`: a system clock step between two
    /// measurements does not move it; a `ManualClock` does); never traps (a reading out of Int64's range is clamped, not a
    /// number is 0: `turn()` refuses both, `validNow`).
    func nowMs() -> Int64 {
        let ms = (leaseClock.redisNow() * 1000).rounded(.down)
        guard ms.isFinite else { return 0 }
        return Int64(min(max(ms, -9e15), 9e15))
    }

    /// The latest instant a turn accepts as now (ms): the year 10000, as for crontab due times.
    static let latestNowMs: Int64 = 253_402_300_800_000

    /// Now, or an error when the clock (or Redis's TIME) reads outside year 1970...9999: the turn
    /// fails (the connection is dropped and Redis's clock measured again) instead of planning.
    func validNow() throws(RedisError) -> Int64 {
        let now = nowMs()
        guard now > 0, now < Self.latestNowMs else { throw .reply("clock out of range: \(now) ms since the epoch") }
        return now
    }

    func connection() throws(RedisError) -> RedisConnection {
        if let redis { return redis }
        let made = try makeConnection()
        try leaseClock.measure(on: made)
        redis = made
        synced = false
        return made
    }

    /// A connection whose replies may take a standby's whole BLPOP wait, and more.
    private func makeConnection() throws(RedisError) -> RedisConnection {
        let waitMs = Int(configuration.renewSeconds * 1000)
        return try RedisConnection(endpoint: configuration.endpoint, timeoutMs: 2000, readTimeoutMs: waitMs + 5000)
    }

    private func secondsToNextTurn() -> Double {
        let mono = DispatchTime.now().uptimeNanoseconds
        var wait = nextLeaseCheck > mono ? Double(nextLeaseCheck - mono) / 1e9 : 0
        wait = min(wait, configuration.reloadInterval)
        if lease.isLeader, let top = heap.top { wait = min(wait, max(0, Double(top.due - nowMs()) / 1000)) }
        return max(0, wait)
    }
}
