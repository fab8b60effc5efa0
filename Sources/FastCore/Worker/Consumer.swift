import Foundation
import Logging

/// The worker's broker loop: it owns the turn and composes the roles that do the
/// work. Each turn it waits for finished work or a queue's waker (`Outbox`,
/// `QueueWakers`), starts what is due (`DeliverySchedule`, dispatch), enforces hard
/// time limits (`HardTimeLimits`), answers remote control and sends events, renews
/// its leases (`Leases`), returns a dead worker's deliveries (`Recoverer`), samples and
/// autoscales (`AutoscaleDriver`), then makes one exchange with the broker
/// (`BrokerPipeline`): this turn's results and acks and the next claim (`Fetcher`,
/// `ClaimStrategy`) in one flush, whose replies it reads at the next turn while it
/// starts what the previous claim took. It returns what it did not start when it
/// stops (`Shutdown.swift`), and survives Redis restarts. Runs on the calling thread
/// until stopped; it never sleeps on that thread: every wait is the outbox's, bounded
/// by the nearest timer.
///
///     let consumer = Consumer(configuration: cfg, registry: registry, logger: log)
///     consumer.run()
public final class Consumer: @unchecked Sendable {
    public enum Phase: Sendable { case consuming, warm, cold }

    public let configuration: WorkerConfiguration
    // Exclusivity: the consumer's state is used on its thread only; the run-time check is pure cost.
    @exclusivity(unchecked) var registry: TaskRegistry
    let logger: Logger
    let outbox = Outbox()
    public let pool: ExecutorPool
    /// Writes of results and acks Redis refused (out of memory, read-only, loading) or
    /// lost with the connection, by reason; each is sent again.
    public var writeFailures: [String: Int] { pipeline.failures.get() }
    /// The Redis server the worker is connected to now (nil while it is not), from any thread:
    /// behind sentinels, the master they named.
    public var server: RedisEndpoint? { pipeline.server.get() }
    /// Behind sentinels: the master they named last (`SentinelWatch`), set on the watch's thread.
    private let namedMaster = LockedBox<SentinelClient.Address?>(nil)
    /// The worker stopped itself warm because too many threads were stuck past their hard
    /// time limit (`WorkerConfiguration.maxAbandonedThreads`): its process should exit with
    /// `abandonedThreadsExitStatus` (the threads cannot be stopped) and be started again.
    public let stoppedForAbandonedThreads = LockedBox(false)
    /// The exit status of a worker restarting for its stuck threads (EX_TEMPFAIL).
    public static let abandonedThreadsExitStatus: Int32 = 75
    /// Chord joins that failed (each tried again, its delivery kept): the body's enqueue
    /// or the count refused by Redis, or the connection lost.
    public let chordJoinFailures = LockedBox(0)
    let phase = LockedBox(Phase.consuming)
    /// Loop turns so far (a test's measure that the loop waits, and does not spin, while it has nothing due).
    public let turns = LockedBox(0)
    /// Deliveries this worker holds (claimed, queued or running; a claim sent and not yet
    /// read counted at the room it asked for) as of its last claim: a test's view of the
    /// prefetch window (`ClaimBudget`) at work.
    public let holding = LockedBox(0)
    let runnerSettings: TaskContext.Settings
    var clock: any WallClock { configuration.clock }
    let metrics: WorkerMetrics
    let started: Double

    // The roles, each owning its state.
    let pipeline: BrokerPipeline
    @exclusivity(unchecked) var fetcher: Fetcher
    @exclusivity(unchecked) var wakers: QueueWakers
    @exclusivity(unchecked) var schedule = DeliverySchedule()
    @exclusivity(unchecked) var hardLimits = HardTimeLimits()
    var softLimits = SoftTimeLimits()
    @exclusivity(unchecked) var leases: Leases
    @exclusivity(unchecked) var recoverer: Recoverer
    @exclusivity(unchecked) var recycler = Recycler()
    @exclusivity(unchecked) var events = WorkerEvents()
    @exclusivity(unchecked) var autoscaling: AutoscaleDriver
    @exclusivity(unchecked) var revoked = RevokedTasks()
    @exclusivity(unchecked) var chordJoins = ChordJoinRetries()
    @exclusivity(unchecked) var limiter = RateLimiter()
    /// This worker's claiming lists (restored at connect whatever the claim).
    private let claimLists: ClaimByMove

    /// Claimed deliveries by tag, each with its runner (queued, waiting, running or finishing).
    @exclusivity(unchecked) var held: [String: TaskContext] = [:]
    /// Queues consumed now (remote control may add or cancel).
    @exclusivity(unchecked) var queues: [String]
    /// Tasks started this loop turn, handed to the pool together (`submitStarted`).
    @exclusivity(unchecked) var startedThisTurn: [TaskContext] = []
    /// Tasks finished, by name (for `stats` and heartbeats).
    @exclusivity(unchecked) var processed: [String: Int] = [:]
    /// Remote-control commands waiting for the loop.
    let controlInbox = LockedBox<[ControlRequest]>([])
    @exclusivity(unchecked) var unstartedReturned = false
    /// A warm give-back that failed is tried again from this time.
    @exclusivity(unchecked) var giveBackAt = 0.0
    /// No connection attempt before this time (the last one failed).
    @exclusivity(unchecked) private var reconnectAt = 0.0
    /// This turn's outbox entries (an array the outbox and the consumer swap each turn).
    @exclusivity(unchecked) private var taken: [Outbox.Entry] = []
    /// The armed wakers' sockets the loop waits on, and those found readable (kept between turns).
    @exclusivity(unchecked) private var watched: [Int32] = []
    @exclusivity(unchecked) private var ready: [Int32] = []

    public init(configuration: WorkerConfiguration, registry: TaskRegistry, logger: Logger) {
        self.configuration = configuration
        // Leases are stamped and judged in Redis's time (claims, renewals, recovery).
        let leaseClock = LeaseClock(clock: configuration.clock)
        self.registry = registry
        self.logger = logger
        self.queues = configuration.queues
        self.claimLists = ClaimByMove(hostname: configuration.hostname)
        let claim: any ClaimStrategy =
            configuration.claimByMove
            ? MoveClaim(
                hostname: configuration.hostname, logger: logger, leaseClock: leaseClock,
                claimBytes: configuration.maxClaimBytes)
            : ScriptClaim(hostname: configuration.hostname, claimBytes: configuration.maxClaimBytes)
        self.pipeline = BrokerPipeline(
            claim: claim, outbox: outbox, clock: configuration.clock, logger: logger,
            metrics: WorkerMetrics(enabled: configuration.metrics))
        self.fetcher = Fetcher(
            queues: configuration.queues, maxIdle: configuration.maxIdleSeconds,
            multiplier: configuration.prefetchMultiplier)
        self.wakers = QueueWakers(endpoint: configuration.endpoint, logger: logger)
        self.leases = Leases(interval: configuration.leaseInterval, clock: leaseClock)
        self.recoverer = Recoverer(
            visibilityTimeout: configuration.visibilityTimeout, interval: configuration.recoveryInterval,
            clock: leaseClock, redeliveries: configuration.redeliveryLimit)
        self.pool = ExecutorPool(
            size: configuration.autoscale?.min ?? configuration.concurrency,
            replacingAbandonedBelow: configuration.maxAbandonedThreads)
        self.runnerSettings = TaskContext.Settings(
            stepSeconds: configuration.stepSeconds, clock: configuration.clock, logger: logger,
            events: LockedBox(configuration.events), routes: configuration.routes,
            metrics: WorkerMetrics(enabled: configuration.metrics), resultExpires: configuration.resultExpires)
        self.metrics = WorkerMetrics(enabled: configuration.metrics)
        self.started = configuration.clock.now()
        self.autoscaling = AutoscaleDriver(
            scaler: configuration.autoscale.map {
                Autoscaler(max: $0.max, min: $0.min, keepalive: configuration.autoscaleKeepalive)
            }, sampling: configuration.metrics)
        for name in registry.names { limiter.set(name, registry.task(named: name)?.options.rateLimit) }
    }

    /// Deliveries held ahead of and in execution at most (prefetch window): `--prefetch-multiplier`
    /// per slot, or by default what the tasks' durations allow (`ClaimBudget`).
    public var capacity: Int { fetcher.window(slots: pool.size) }

    /// Warm stop: claim nothing more, return what has not started, finish what runs (thread-safe).
    public func stop() { request(.warm) }

    /// Cold stop: also return the running tasks' messages and leave at once (thread-safe).
    public func stopNow() { request(.cold) }

    private func request(_ p: Phase) {
        phase.set(p)
        outbox.wake()
    }

    /// Consume until stopped.
    public func run() {
        var claimed = 0
        // Behind sentinels, a failover is followed the moment they announce it: a `SENTINEL FAILOVER`
        // leaves the old master writable (and this worker's links to it up) until they demote it.
        let watch = configuration.endpoint.sentinel.map { sentinel in
            SentinelWatch(sentinel: sentinel, logger: logger) { [namedMaster, outbox] address in
                namedMaster.set(address)
                outbox.wake()
            }
        }
        defer { watch?.stop() }
        while true {
            turns.modify { $0 += 1 }
            let phase = self.phase.get()
            if phase == .cold {
                leave(returning: Array(held.keys))
                sayGoodbye()
                break
            }
            if phase == .warm && !unstartedReturned && clock.now() >= giveBackAt { returnUnstarted() }
            if phase == .warm && unstartedReturned && held.isEmpty && pipeline.own.isEmpty
                && !pipeline.hasPendingWrites
            {
                var rest = outbox.take(waitingUpTo: 0)
                if rest.isEmpty {
                    sayGoodbye()
                    break
                }
                if ensureConnected() {
                    write(&rest)
                    continue
                }
                outbox.requeue(rest)  // Redis is away: the wait below paces the next try
            }
            // No waker while a refused claim pauses claiming: one that fires at once would spin the loop.
            if (claimed == 0 || fetcher.queuesLookEmpty) && phase == .consuming && hasRoom
                && !pipeline.hasRefusedWrites
            {
                let now = clock.now()
                if fetcher.mayClaim(now: now) { wakers.arm(queues: fetcher.order, now: now) }
            }
            let busy = (claimed > 0 && !fetcher.queuesLookEmpty) || pipeline.isWaiting
            watched.removeAll(keepingCapacity: true)
            if phase == .consuming { wakers.sockets(into: &watched) }
            ready.removeAll(keepingCapacity: true)
            outbox.take(
                waitingUpTo: busy
                    ? 0 : wait(idle: phase == .consuming && hasRoom && !pipeline.hasRefusedWrites ? fetcher.idle : 0.1),
                watching: watched, readable: &ready, into: &taken)
            let now = clock.now()
            if !ready.isEmpty { wakers.fired(ready, now: now) }
            startDue(now)
            submitStarted()
            enforceHardLimits(now)
            enforceSoftLimits(now)
            followNamedMaster()
            if ensureConnected() {
                answerControlRequests()
                sendEvents(now)
                retryChordJoins(now)
            }
            if phase == .consuming && ensureConnected() {
                // No renewals pile up behind a refused write (the next one after the backoff renews).
                if !pipeline.isHoldingWrites { pipeline.own += leases.renewals(now: now, held: held.keys) }
                recoverStale(now)
                if autoscaling.isDue(now), let r = settledConnection() {
                    autoscaling.tick(
                        now: now, on: r, queues: queues, pool: pool, scheduled: schedule.count, metrics: metrics,
                        logger: logger)
                }
            }
            let quiet = fetcher.isQuiet(now: now, wakersArmed: wakers.allArmed(fetcher.order))
            // The phase read now: this turn may have stopped claiming (too many stuck threads).
            claimed = exchange(&taken, claiming: self.phase.get() == .consuming, claimMore: !quiet)
            submitStarted()
            if !quiet { fetcher.turnEnded(claimed: claimed) }
        }
        pool.shutdown()
        wakers.stop()
        if let r = settledConnection() { pipeline.claim.stopped(on: r) }
        logger.info("consumer stopped")
    }

    /// Deliveries counted against the prefetch window.
    private var active: Int {
        held.count - schedule.count + max(0, schedule.count - configuration.maxScheduledBeyondPrefetch)
    }
    private var hasRoom: Bool { active < capacity }

    /// Seconds until the next timer (ETA, lease, recovery, hard limit, reconnect), at most `idle`.
    private func wait(idle: Double) -> Double {
        let now = clock.now()
        var next = now + idle
        if let due = schedule.nextDue { next = min(next, due) }
        // Timers served only on a connection: none before the next connection attempt.
        var connected = Double.infinity
        if phase.get() == .consuming {
            // Renewals wait for a refused write's backoff (they are not added before it ends).
            let renewal = pipeline.isHoldingWrites ? max(leases.nextRenewal, pipeline.retryAt) : leases.nextRenewal
            connected = min(renewal, recoverer.nextPass)
        }
        if !chordJoins.isEmpty { connected = min(connected, chordJoins.retryAt) }
        if pipeline.connection == nil { connected = max(connected, reconnectAt) }
        next = min(next, connected)
        if runnerSettings.events.get() { next = min(next, events.nextHeartbeat) }
        if autoscaling.isActive { next = min(next, autoscaling.nextTick) }
        if pipeline.connection == nil { next = max(min(next, reconnectAt), now) }
        if fetcher.pausedUntil > now { next = min(next, fetcher.pausedUntil) }
        // A refused write is sent again at `retryAt` (not before: the wait paces the retries).
        if pipeline.retryAt > now && (pipeline.hasPendingWrites || !pipeline.own.isEmpty) {
            next = min(next, pipeline.retryAt)
        }
        next = min(next, hardLimits.nextDeadline, softLimits.nextDeadline)
        return max(0, next - now)
    }

    // MARK: - connection

    /// Connect if needed, declaring our queues' bindings; false while Redis is unreachable
    /// (then no attempt is made for half a second: the loop's wait covers it).
    func ensureConnected() -> Bool {
        if pipeline.connection != nil { return true }
        let now = clock.now()
        guard now >= reconnectAt else { return false }
        do {
            let r = try RedisConnection(endpoint: configuration.endpoint, timeoutMs: 10_000, io: configuration.redisIO)
            var cmds: [[String]] = []
            for q in queues {
                let member = QueueKeys.bindingMember(routingKey: q, queue: q)
                cmds.append(["SADD", QueueKeys.bindingKey(exchange: q), member])
            }
            _ = try r.pipeline(cmds)
            let own = try claimLists.restoreOwn(
                listKeys: QueueKeys.consumeOrder(queues: queues), on: r, redeliveries: configuration.redeliveryLimit,
                now: now)
            if own.deadLettered > 0 {
                logger.error(
                    "moved \(own.deadLettered) message(s) this worker had claimed, whose redeliveries ran out, to \(configuration.deadLetterKey)"
                )
            }
            let restored = own.restored
            if restored > 0 {
                logger.warning(
                    "returned \(restored) message(s) this worker had claimed but not recorded to their queues")
            }
            // A claim's reply lost with the connection: what its receipt says it took, and
            // this worker does not hold, goes back to its queues now (not at the visibility timeout).
            let ahead = Set(fetcher.claimedAhead.map(\.tag))
            let returned = try pipeline.claim.connected(on: r) { [held] in held[$0] != nil || ahead.contains($0) }
            if returned > 0 {
                logger.warning("returned \(returned) message(s) a claim took as the connection dropped to their queues")
            }
            pipeline.connected(r)
            logger.info(
                "connected to \(configuration.endpoint) (\(r.usesUring ? "io_uring" : "socket")), consuming \(configuration.queues.joined(separator: ","))"
            )
            return true
        } catch {
            logger.warning("Redis at \(configuration.endpoint) unreachable (\(error)); retrying")
            reconnectAt = now + 0.5
            return false
        }
    }

    /// The connection with every reply of what was sent ahead read, for a role that
    /// uses it synchronously; nil while there is none.
    func settledConnection() -> RedisConnection? {
        settle()
        return pipeline.connection
    }

    /// The sentinels named a master other than the one connected to: drop the links to the old
    /// one (what was in flight is sent again to the new one) and connect at once.
    private func followNamedMaster() {
        guard let named = namedMaster.exchange(nil), let server = pipeline.server.get(),
            server.host != named.host || server.port != named.port
        else { return }
        pipeline.drop(
            .connection(
                "the sentinels named \(named.host):\(named.port) master instead of \(server.host):\(server.port)"))
        wakers.stop()
        reconnectAt = 0
    }

    /// Let the next `ensureConnected` try at once (a cold stop's last chance to give back).
    func allowReconnectNow() { reconnectAt = 0 }

    /// Forget the connection (the next turn reconnects).
    func dropConnection(_ error: RedisError? = nil) { pipeline.drop(error) }

    /// Read the replies of what was sent ahead, in order. Claimed deliveries join the
    /// fetcher's; confirmed writes free their deliveries (once every reply is read: a
    /// chord join uses the connection); a claim whose script Redis lost is claimed again.
    func settle() {
        guard pipeline.isWaiting else { return }
        var lostScript: DeliveryClaim.Pending?
        let confirmed = pipeline.settle(reusing: &recycler.spare) { reply in
            switch reply {
            case .scriptLost(let pending):
                lostScript = pending
            case .refused(let m):
                logger.error("claim failed: \(m)")
                fetcher.apply(reply, now: clock.now())
            default:
                fetcher.apply(reply, now: clock.now())
            }
        }
        completed(first: confirmed)
        if let pending = lostScript, let r = settledConnection() {
            do {
                fetcher.apply(.took(try pipeline.claim.retry(pending, on: r), asked: pending.max), now: clock.now())
            } catch {
                dropConnection(error)
            }
        }
    }

    /// Return deliveries whose lease went stale (their worker died) to their queues.
    private func recoverStale(_ now: Double) {
        guard recoverer.isDue(now), let r = settledConnection() else { return }
        do {
            try recoverer.pass(now: now, on: r, logger: logger)
        } catch {
            dropConnection(error)
        }
    }

    // MARK: - writes

    /// Send the roles' own commands (and the records of claims by move) and wait for the replies.
    func writeOwn() {
        var none: [Outbox.Entry] = []
        write(&none)
    }

    /// Pipeline our own commands plus the outbox entries and wait for the replies;
    /// on failure keep them for later.
    func write(_ entries: inout [Outbox.Entry]) {
        guard ensureConnected(), settledConnection() != nil else {
            outbox.requeue(entries)
            entries.removeAll(keepingCapacity: true)
            return
        }
        sendWrite(&entries)
        do {
            try pipeline.flush()
        } catch {
            dropConnection(error)
        }
        settle()
    }

    /// Queue the outbox entries and the own commands; returns how many deliveries they
    /// complete. Completions of deliveries no longer held (abandoned past their hard
    /// limit) are dropped; the entries' task events join the next `task.multi`.
    @discardableResult
    private func sendWrite(_ entries: inout [Outbox.Entry]) -> Int {
        pipeline.sendWrite(&entries) { entries in
            entries.removeAll { e in e.completes.map { held[$0] == nil } ?? false }
            for e in entries { if let ev = e.event { events.pending.append(ev) } }
        }
    }

    /// The first `count` written entries were acknowledged: count chord parts, free the
    /// deliveries and recycle their runners. A part whose join failed keeps its delivery
    /// held (leased, unacknowledged) until a retry (`retryChordJoins`) succeeds.
    private func completed(first count: Int) {
        guard count > 0 else { return }
        var joining: Set<String> = []
        pipeline.forEachConfirmedChordPart(count) { part, tag in
            guard !joinChord(part, tag: tag) else { return }
            chordJoins.failed(part, tag: tag, now: clock.now())
            if let tag { joining.insert(tag) }
        }
        pipeline.confirm(first: count) { tag in if !joining.contains(tag) { release(tag) } }
    }

    /// Let go of a finished delivery: count it, recycle its runner.
    func release(_ tag: String) {
        guard var h = held.removeValue(forKey: tag) else { return }
        if fetcher.budget.isAdaptive, let (started, finished) = h.ranFromTo {
            fetcher.budget.finished(started: started, at: finished)
        }
        processed[h.message.task, default: 0] += 1
        recycler.recycle(&h, capacity: capacity)
    }

    // MARK: - the exchange

    /// Tell the claim budget how long the longest-running task has run (at most every
    /// millisecond, only while the window follows the tasks' durations).
    private func lookAtRunningTasks() {
        let now = clock.now()
        guard fetcher.runningDue(now: now) else { return }
        var longest: Double? = nil
        for h in held.values {
            guard let started = h.runningSince else { continue }
            if longest.map({ started < $0 }) ?? true { longest = started }
        }
        fetcher.running(longestStartedAt: longest, now: now)
    }

    /// One exchange with the broker per loop turn: send this turn's writes and, with
    /// room in the prefetch window and `claimMore`, the next claim, in one flush; then
    /// dispatch what the previous claim took while Redis works on them. The replies are
    /// read at the next turn, except when the queues looked empty: then the claim is
    /// read at once, so a message that just arrived starts now. Returns how many were dispatched.
    private func exchange(_ entries: inout [Outbox.Entry], claiming: Bool, claimMore: Bool = true) -> Int {
        guard ensureConnected(), settledConnection() != nil else {
            outbox.requeue(entries)
            entries.removeAll(keepingCapacity: true)
            return 0
        }
        let completing = sendWrite(&entries)
        guard pipeline.connection != nil else { return 0 }
        lookAtRunningTasks()
        // Deliveries this write completes free their slots now: its replies come before
        // the claim's, and a failed write drops the connection (and the claim).
        let room = capacity - active + completing - fetcher.claimedAhead.count
        let sentAt = clock.now()
        var asking = 0
        do {
            // Nothing more is claimed while Redis refuses writes: the refused ones' deliveries stay held.
            if claimMore && claiming && room > 0 && !pipeline.hasRefusedWrites && fetcher.mayClaim(now: sentAt) {
                try pipeline.sendClaim(room: room, queues: fetcher.order, now: sentAt)
                asking = room - completing
                if fetcher.queuesLookEmpty {
                    settle()
                    asking = 0
                }
            } else {
                try pipeline.flush()
            }
        } catch {
            if case .reply(let m) = error {
                logger.error("claim failed: \(m)")
                fetcher.apply(.refused(m), now: sentAt)
            } else {
                dropConnection(error)
            }
        }
        guard claiming else { return 0 }
        var deliveries: [Delivery] = []
        fetcher.takeClaimed(swappingWith: &deliveries)
        defer {
            deliveries.removeAll(keepingCapacity: true)
            recycler.spare.keep(deliveries: deliveries)
        }
        let now = clock.now()
        for d in deliveries { dispatch(d, now: now) }
        holding.set(held.count + asking)
        return deliveries.count
    }
}
