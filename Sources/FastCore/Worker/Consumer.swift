import Foundation
import Logging

/// The worker's broker loop. It claims deliveries atomically into kombu's
/// `unacked` bookkeeping, keeps a lease on everything it holds (so only a dead
/// worker's deliveries ever go stale), runs due tasks on the executor pool,
/// writes results + acks in pipelined batches, and returns what it did not
/// start when it stops. Runs on the calling thread until stopped; survives
/// Redis restarts.
///
///     let consumer = Consumer(configuration: cfg, registry: registry, logger: log)
///     consumer.run()
public final class Consumer: @unchecked Sendable {
    public enum Phase: Sendable { case consuming, warm, cold }

    public let configuration: WorkerConfiguration
    var registry: TaskRegistry
    let logger: Logger
    let outbox = Outbox()
    public let pool: ExecutorPool
    private let claim: DeliveryClaim
    /// The next claim's serial (its receipt's first line): a random start, then counting.
    private var claimSerial = UInt64.random(in: 1..<(1 << 40))
    /// A claim whose reply the connection took with it (its serial): at the next connect,
    /// what its receipt says it took and nobody holds goes back to its queues.
    private var lostClaim: String?
    /// This worker's claiming lists (used by `--claim move`; restored at connect whatever the mode).
    private let claimLists: ClaimByMove
    private let restore = DeliveryRestore()
    let phase = LockedBox(Phase.consuming)
    let runnerSettings: TaskRunner.Settings
    var clock: any WallClock { configuration.clock }
    /// The broker connection. Reading it first reads the replies of what was sent
    /// ahead (`settle`), so every other use of the connection reads its own replies;
    /// setting nil forgets it: writes in flight go back to be sent again, and a claim
    /// in flight stays in `unacked` until its lease runs out.
    var redis: RedisConnection? {
        get {
            settle()
            return connection
        }
        set {
            connection = newValue
            lostClaims(in: sentAhead)
            unsent(sentAhead)
            sentAhead.removeAll()
            // What claims by move took and did not record goes back to its queues at the next
            // connect (`restoreOwn`): their records may or may not have landed.
            unrecorded.removeAll()
            claimingInUse.removeAll()
            lengths.removeAll()
        }
    }
    private var connection: RedisConnection?

    /// Work written to the broker whose replies are not read yet, oldest first.
    private enum SentAhead {
        /// `entries` outbox entries (the next ones in `written`) and the consumer's own
        /// commands, sent as one `WriteBatch`.
        case write(entries: Int, own: [[String]], replies: Int)
        /// The next claim, sent last (after NOSCRIPT it is claimed again once every reply is read).
        case claim(DeliveryClaim.Pending)
        /// A claim by move: the claiming lists' registrations, the transaction moving each
        /// list's batch, and the reads of the claiming lists.
        case moveClaim([(key: String, count: Int)])
        /// LLEN of each consumed list (what the next claim by move plans from).
        case lengths([String])
        /// The transaction recording what claims by move took (`ClaimByMove.appendRecords`).
        case records(replies: Int)
    }
    /// What the last exchange sent: Redis runs it while the consumer starts the previous
    /// claim's deliveries; the replies are read at the next use of the connection.
    private var sentAhead: [SentAhead] = []
    /// `settle`'s list of what it reads, kept between turns for its storage.
    private var settling: [SentAhead] = []
    /// Outbox entries written and not yet confirmed, oldest first (the `.write`s in
    /// `sentAhead` count them off in order).
    private var written: [Outbox.Entry] = []
    /// This turn's outbox entries (an array the outbox and the consumer swap each turn).
    private var taken: [Outbox.Entry] = []
    /// The write being built, and written buffers on their way back to the outbox:
    /// kept between turns for their storage.
    private var batch = WriteBatch()
    private var spent: [[UInt8]] = []
    /// Commands the consumer encodes itself (claims by move, their records), kept for its storage.
    private var wire: [UInt8] = []
    /// The armed wakers' sockets the loop waits on, and those found readable (kept between turns).
    private var watched: [Int32] = []
    private var ready: [Int32] = []
    /// Claimed and not yet started.
    private var claimedAhead: [DeliveryClaim.Delivery] = []
    /// Envelope buffers and tags of finished tasks, for the next claims' messages.
    private var spare = SpareBuffers()
    /// Finished tasks' runners that nothing else holds: the next deliveries are decoded
    /// into them (`TaskMessage.decode`, `TaskContext.reuse`) instead of new ones.
    private var spareRunners: [TaskRunner] = []
    /// The last claim took less than it asked for (or, claiming by move, left every list
    /// empty): the queues look drained. The consumer then reads its next claim at once,
    /// and claims only when a waker fires or the idle poll is due (`pollDue`), instead of
    /// sending an empty claim every turn while the tasks it started finish.
    private var queuesLookEmpty = true
    /// When the idle poll claims again although no waker fired (priority lists, new queues).
    private var pollDue = 0.0
    /// Seconds of the coming idle wait (doubling while claims find nothing).
    private var idle = 0.001
    /// Claims by move: the consumed lists' lengths as last read, kombu records of what was
    /// taken and not yet recorded, and the claiming lists to empty with them.
    private var lengths: [String: Int] = [:]
    private var unrecorded: [ClaimByMove.Taken] = []
    private var claimingInUse: Set<String> = []
    /// Redis answered a claim by move with an error: the script claims for the rest of the run.
    private var moveRefused = false
    /// Queues consumed now (remote control may add or cancel).
    var queues: [String]
    private var queueOrder: [String]

    /// Consume from `queues` from the next claim on.
    func resetQueueOrder(_ queues: [String]) { queueOrder = queues }
    /// The claim script's keys for `queueOrder`, and the consumed lists in consume order
    /// (`QueueKeys.consumeOrder`, for claims by move): made again only when the order changes.
    private var claimKeys: [String] { queueKeys.claim }
    private var moveKeys: [String] { queueKeys.lists }
    private var queueKeys: (claim: [String], lists: [String]) {
        if keysOrder != queueOrder {
            keysOrder = queueOrder
            keysMade = (claim.keys(queueOrder), QueueKeys.consumeOrder(queues: queueOrder))
        }
        return keysMade
    }
    private var keysOrder: [String] = []
    private var keysMade: (claim: [String], lists: [String]) = ([], [])
    /// Claimed deliveries by tag, each with its runner (queued, waiting, running or finishing).
    var held: [String: TaskRunner] = [:]
    var scheduled: [(due: Double, tag: String)] = []
    var limiter = RateLimiter()
    var ownWrites: [[String]] = []
    /// One `QueueWaker` per consumed queue (its priority-0 list), made on first idle turn.
    var wakers: [String: QueueWaker] = [:]
    /// Held deliveries whose task has a hard time limit (`enforceHardLimits` watches only these).
    var hardLimited: [String] = []
    /// Tasks started this loop turn, handed to the pool together (`submitStarted`).
    var startedThisTurn: [TaskRunner] = []
    private var unstartedReturned = false
    private var nextLease = 0.0
    private var nextRecovery = 0.0
    /// The earliest hard time limit among running tasks, from the last `enforceHardLimits` pass.
    private var nextHardDeadline = Double.infinity
    /// Task ids revoked by remote control (kept for the worker's lifetime, bounded).
    var revoked: [String] = []
    var revokedSet: Set<String> = []
    /// Tasks finished, by name (for `stats` and heartbeats).
    var processed: [String: Int] = [:]
    let started: Double
    /// Remote-control commands waiting for the loop.
    let controlInbox = LockedBox<[ControlRequest]>([])
    var events = WorkerEvents()
    var autoscaler: Autoscaler?
    var nextAutoscale = 0.0
    let metrics: WorkerMetrics

    public init(configuration: WorkerConfiguration, registry: TaskRegistry, logger: Logger) {
        self.configuration = configuration
        self.registry = registry
        self.logger = logger
        self.queues = configuration.queues
        self.queueOrder = configuration.queues
        self.claimLists = ClaimByMove(hostname: configuration.hostname)
        self.claim = DeliveryClaim(receiptKey: DeliveryClaim.receiptKey(hostname: configuration.hostname))
        self.pool = ExecutorPool(size: configuration.autoscale?.min ?? configuration.concurrency)
        self.runnerSettings = TaskRunner.Settings(
            stepSeconds: configuration.stepSeconds, clock: configuration.clock, logger: logger,
            events: LockedBox(configuration.events), routes: configuration.routes,
            metrics: WorkerMetrics(enabled: configuration.metrics))
        self.metrics = WorkerMetrics(enabled: configuration.metrics)
        self.started = configuration.clock.now()
        self.autoscaler = configuration.autoscale.map {
            Autoscaler(max: $0.max, min: $0.min, keepalive: configuration.autoscaleKeepalive)
        }
        for name in registry.names { limiter.set(name, registry.task(named: name)?.options.rateLimit) }
    }

    /// Deliveries held ahead of execution at most (prefetch window).
    public var capacity: Int { max(1, pool.size * max(1, configuration.prefetchMultiplier)) }

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
        while true {
            let phase = self.phase.get()
            if phase == .cold {
                leave(returning: Array(held.keys))
                sayGoodbye()
                break
            }
            if phase == .warm && !unstartedReturned { returnUnstarted() }
            if phase == .warm && unstartedReturned && held.isEmpty && ownWrites.isEmpty {
                var rest = outbox.take(waitingUpTo: 0)
                if rest.isEmpty {
                    sayGoodbye()
                    break
                }
                write(&rest)
                continue
            }
            if (claimed == 0 || queuesLookEmpty) && phase == .consuming && hasRoom { armWakers() }
            let busy = (claimed > 0 && !queuesLookEmpty) || !sentAhead.isEmpty
            watched.removeAll(keepingCapacity: true)
            if phase == .consuming { for w in wakers.values { if let s = w.socket { watched.append(s) } } }
            ready.removeAll(keepingCapacity: true)
            outbox.take(
                waitingUpTo: busy ? 0 : wait(idle: phase == .consuming && hasRoom ? idle : 0.1),
                watching: watched, readable: &ready, into: &taken)
            let now = clock.now()
            if !ready.isEmpty { wakersFired(ready, now: now) }
            startDue(now)
            submitStarted()
            enforceHardLimits(now)
            if ensureConnected() {
                answerControlRequests()
                sendEvents(now)
            }
            if phase == .consuming && ensureConnected() {
                renewLeases(now)
                recoverStale(now)
                autoscale(now)
            }
            let quiet = queuesLookEmpty && now < pollDue && wakersArmed
            claimed = exchange(&taken, claiming: phase == .consuming, claimMore: !quiet)
            submitStarted()
            if !quiet { idle = claimed > 0 ? 0.001 : min(idle * 2, configuration.maxIdleSeconds) }
        }
        pool.shutdown()
        for w in wakers.values { w.stop() }
        // A clean stop leaves no receipt behind (no claim of this worker is unanswered).
        if let key = claim.receiptKey, lostClaim == nil, let r = redis { _ = try? r.command("DEL", key) }
        logger.info("consumer stopped")
    }

    /// Deliveries counted against the prefetch window.
    private var active: Int {
        held.count - scheduled.count + max(0, scheduled.count - configuration.maxScheduledBeyondPrefetch)
    }
    private var hasRoom: Bool { active < capacity }

    /// Seconds until the next timer (ETA, lease, recovery, hard limit), at most `idle`.
    private func wait(idle: Double) -> Double {
        let now = clock.now()
        var next = now + idle
        if let first = scheduled.first { next = min(next, first.due) }
        if phase.get() == .consuming { next = min(next, nextLease, nextRecovery) }
        if runnerSettings.events.get() { next = min(next, events.nextHeartbeat) }
        if autoscaler != nil || configuration.metrics { next = min(next, nextAutoscale) }
        next = min(next, nextHardDeadline)
        return max(0, next - now)
    }

    // MARK: - connection

    /// Connect if needed, declaring our queues' bindings; false while Redis is unreachable.
    private func ensureConnected() -> Bool {
        if connection != nil { return true }
        do {
            let r = try RedisConnection(endpoint: configuration.endpoint, timeoutMs: 10_000, io: configuration.redisIO)
            var cmds: [[String]] = []
            for q in queues {
                let member = QueueKeys.bindingMember(routingKey: q, queue: q)
                cmds.append(["SADD", QueueKeys.bindingKey(exchange: q), member])
            }
            _ = try r.pipeline(cmds)
            let restored = try claimLists.restoreOwn(listKeys: QueueKeys.consumeOrder(queues: queues), on: r)
            if restored > 0 {
                logger.warning(
                    "returned \(restored) message(s) this worker had claimed but not recorded to their queues")
            }
            try returnLostClaim(on: r)
            redis = r
            logger.info(
                "connected to \(configuration.endpoint) (\(r.usesUring ? "io_uring" : "socket")), consuming \(configuration.queues.joined(separator: ","))"
            )
            return true
        } catch {
            logger.warning("Redis at \(configuration.endpoint) unreachable (\(error)); retrying")
            Thread.sleep(forTimeInterval: 0.5)
            return false
        }
    }

    /// A claim's reply was lost with the connection: what its receipt says it took, and
    /// this worker does not hold, goes back to its queues now (not at the visibility timeout).
    private func returnLostClaim(on r: RedisConnection) throws(RedisError) {
        guard let serial = lostClaim else { return }
        let ahead = Set(claimedAhead.map(\.tag))
        let tags = try claim.receipt(of: serial, on: r).filter { held[$0] == nil && !ahead.contains($0) }
        let returned = try restore.returnDeliveries(tags, on: r)
        lostClaim = nil
        if returned > 0 {
            logger.warning("returned \(returned) message(s) a claim took as the connection dropped to their queues")
        }
    }

    /// Read the replies of what was sent ahead, in order. Confirmed writes free their
    /// deliveries (once every reply is read: a chord join uses the connection); a
    /// claim's deliveries join `claimedAhead`.
    private func settle() {
        guard !sentAhead.isEmpty, let r = connection else { return }
        var ops: [SentAhead] = []
        swap(&ops, &settling)
        swap(&ops, &sentAhead)
        defer {
            ops.removeAll(keepingCapacity: true)
            settling = ops
        }
        var confirmed = 0
        var lostScript: DeliveryClaim.Pending?
        for (i, op) in ops.enumerated() {
            do {
                switch op {
                case .write(let entries, _, let replies):
                    for _ in 0..<replies {
                        for e in try r.readErrors() { logger.error("write failed: \(e)") }
                    }
                    confirmed += entries
                case .claim(let pending):
                    guard let took = try claimReply(pending, on: r) else {
                        lostScript = pending
                        continue
                    }
                    tookClaim(took, asked: pending.max)
                case .moveClaim(let plan):
                    for (key, _) in plan { claimingInUse.insert(claimLists.claimingKey(key)) }
                    // Taken straight into `unrecorded`: recorded by the next write, before
                    // anything that could acknowledge one.
                    let from = unrecorded.count
                    try claimLists.deliveries(plan, on: r, reusing: &spare, into: &unrecorded)
                    var took = spare.deliveryList()
                    for t in unrecorded[from...] {
                        took.append(DeliveryClaim.Delivery(tag: t.tag, listKey: t.listKey, raw: t.raw))
                    }
                    tookClaim(took, asked: nil)
                case .lengths(let keys):
                    for key in keys { lengths[key] = Int(try r.read().integer ?? 0) }
                    if keys.allSatisfy({ lengths[$0] == 0 }) { lookedEmpty() } else { queuesLookEmpty = false }
                case .records(let replies):
                    for _ in 0..<replies {
                        for e in try r.readErrors() { logger.error("recording claimed deliveries failed: \(e)") }
                    }
                }
            } catch {
                if case .moveClaim = op, case .reply(let m) = error {
                    // ACLs that deny SORT (it is in @dangerous), a renamed command, …: the reconnect
                    // below returns whatever was moved; from then on the script claims.
                    logger.error("Redis refused the claim by move (\(m)); claiming with the script from now on")
                    moveRefused = true
                }
                logger.warning("lost Redis: \(error); reconnecting")
                connection = nil
                lostClaims(in: ops[i...])
                unsent(ops[i...])
                break
            }
        }
        completed(first: confirmed)
        if let pending = lostScript, connection != nil {
            settle()
            do {
                tookClaim(try claim.retry(pending, on: r), asked: pending.max)
            } catch {
                if case .connection = error { lostClaim = pending.serial }
                dropConnection(error)
            }
        }
    }

    /// A claim's reply; an error reply (LOADING after a restart, BUSY, …) is logged and
    /// waited out for half a second, with the connection kept (its reply was read).
    private func claimReply(_ pending: DeliveryClaim.Pending, on r: RedisConnection) throws(RedisError)
        -> [DeliveryClaim.Delivery]?
    {
        do {
            return try claim.finish(pending, on: r, reusing: &spare)
        } catch {
            guard case .reply(let m) = error else { throw error }
            claimRefused(m)
            return []
        }
    }

    /// Redis answered a claim with an error (LOADING, BUSY, …): log it and pause before the next.
    private func claimRefused(_ message: String) {
        logger.error("claim failed: \(message)")
        Thread.sleep(forTimeInterval: 0.5)
    }

    /// Queue the records of what claims by move took; false if the connection failed.
    private func sendRecords(on r: RedisConnection) -> Bool {
        guard !claimingInUse.isEmpty else { return true }
        wire.removeAll(keepingCapacity: true)
        let replies = claimLists.appendRecords(
            unrecorded, claiming: claimingInUse, stamp: Self.stamp(clock.now()), to: &wire)
        do {
            try r.append(resp: wire)
        } catch {
            dropConnection(error)
            return false
        }
        sentAhead.append(.records(replies: replies))
        unrecorded.removeAll(keepingCapacity: true)
        claimingInUse.removeAll(keepingCapacity: true)
        return true
    }

    /// A lease's time as kombu's `unacked_index` scores it here: whole seconds, rounded up.
    static func stamp(_ now: Double) -> String { String(Int(now.rounded(.up))) }

    /// Queue LLEN of `keys` (the lengths the next claim by move plans from).
    private func sendLengths(_ keys: [String], on r: RedisConnection) throws(RedisError) {
        wire.removeAll(keepingCapacity: true)
        for key in keys { RESP.append(command: "LLEN", key, to: &wire) }
        try r.append(resp: wire)
        sentAhead.append(.lengths(keys))
    }

    /// A claim's deliveries wait in `claimedAhead` to be started; one that took less
    /// than `asked` saw the queues drained (a claim by move learns it from the lengths).
    private func tookClaim(_ took: [DeliveryClaim.Delivery], asked: Int?) {
        if let asked, took.count < asked {
            lookedEmpty()
        } else {
            queuesLookEmpty = false
        }
        rotateQueues(after: took)
        if claimedAhead.isEmpty { claimedAhead = took } else { claimedAhead += took }
    }

    /// The queues were found drained: claim again when a waker fires or the idle poll is due.
    private func lookedEmpty() {
        queuesLookEmpty = true
        pollDue = clock.now() + idle
    }

    /// Every consumed queue's waker is waiting for a message (none has fired since armed).
    private var wakersArmed: Bool {
        queueOrder.allSatisfy { wakers[$0]?.isArmed ?? false }
    }

    /// Note a claim among `ops` whose reply will not come (the connection is gone).
    private func lostClaims(in ops: some Collection<SentAhead>) {
        for op in ops { if case .claim(let pending) = op { lostClaim = pending.serial } }
    }

    /// Put the writes among `ops` (the last ones sent) back to be sent again (their
    /// replies never came): their entries are the last in `written`.
    private func unsent(_ ops: some Collection<SentAhead>) {
        var entries = 0
        var own: [[String]] = []
        for op in ops {
            guard case .write(let n, let commands, _) = op else { continue }
            entries += n
            own += commands
        }
        outbox.requeue(Array(written.suffix(entries)))
        written.removeLast(entries)
        if !own.isEmpty { ownWrites = own + ownWrites }
    }

    /// Deliveries claimed ahead and not started (shutdown gives them back).
    private func takeClaimedAhead() -> [DeliveryClaim.Delivery] {
        settle()
        if !claimingInUse.isEmpty { writeOwn() }  // recorded first: giving back reads `unacked`
        defer { claimedAhead.removeAll() }
        return claimedAhead
    }

    private func dropConnection(_ error: RedisError) {
        logger.warning("lost Redis: \(error); reconnecting")
        redis = nil
    }

    // MARK: - writes

    /// Send the consumer's own commands (and the records of claims by move) and wait for the replies.
    func writeOwn() {
        var none: [Outbox.Entry] = []
        write(&none)
    }

    /// Pipeline our own commands plus the outbox entries and wait for the replies;
    /// on failure keep them for later.
    private func write(_ entries: inout [Outbox.Entry]) {
        guard ensureConnected(), let r = redis else {
            outbox.requeue(entries)
            entries.removeAll(keepingCapacity: true)
            return
        }
        sendWrite(&entries, on: r)
        do {
            try r.flush()
        } catch {
            dropConnection(error)
        }
        settle()
    }

    /// Queue the outbox entries' commands and our own on the connection, without
    /// waiting (`settle` reads the replies); returns how many deliveries they complete.
    /// Completions of deliveries no longer held (abandoned past their hard limit) are dropped.
    /// `entries` is left empty (its storage kept): they are in `written`, or back in the outbox.
    @discardableResult
    private func sendWrite(_ entries: inout [Outbox.Entry], on r: RedisConnection) -> Int {
        defer { entries.removeAll(keepingCapacity: true) }
        // Records of claimed deliveries go before any write that could acknowledge one.
        guard sendRecords(on: r) else {
            outbox.requeue(entries)
            return 0
        }
        entries.removeAll { e in e.completes.map { held[$0] == nil } ?? false }
        for e in entries { if let ev = e.event { events.pending.append(ev) } }
        guard !entries.isEmpty || !ownWrites.isEmpty else { return 0 }
        // The consumer's own writes go last: a REVOKED or TimeLimitExceeded record
        // must land after any progress its abandoned task had already posted.
        defer { batch.removeAll() }  // let go of the parts: their buffers go back to the executors
        for e in entries { batch.add(e.part) }
        batch.add(own: ownWrites)
        do {
            try batch.append(to: r)
        } catch {
            dropConnection(error)
            outbox.requeue(entries)
            return 0
        }
        written += entries
        sentAhead.append(.write(entries: entries.count, own: ownWrites, replies: batch.replies))
        ownWrites.removeAll()
        return entries.count { $0.completes != nil }
    }

    /// The first `count` entries in `written` were written and acknowledged: count chord
    /// parts, free the deliveries. Their transaction buffers go back to the outbox for
    /// the executors' next parts.
    private func completed(first count: Int) {
        guard count > 0 else { return }
        for e in written[..<count] { if let part = e.chord { joinChord(part, tag: e.completes) } }
        for i in 0..<count {
            let b = written[i].part.takeTransactionBuffer()
            if b.capacity > 0 { spent.append(b) }
            guard let tag = written[i].completes, var h = held.removeValue(forKey: tag) else { continue }
            processed[h.message.task, default: 0] += 1
            recycle(&h)
        }
        written.removeFirst(count)
        outbox.recycle(&spent)
    }

    /// Keep a finished task's runner for the next delivery, and its envelope buffer and
    /// tag for the next claims, when nothing else holds them (an executor thread that has
    /// not yet let go, a chord join, a remote-control reply: then they are left to go).
    private func recycle(_ h: inout TaskRunner) {
        guard isKnownUniquelyReferenced(&h), let (envelope, tag) = h.message.takeBuffers() else { return }
        spare.keep(envelope: envelope)
        spare.keep(tag: tag)
        if spareRunners.count < capacity { spareRunners.append(h) }
    }

    /// Count a finished header task into its chord, then acknowledge it.
    /// Until the ack, a crash means a rerun, which the chord's dedupe set absorbs.
    private func joinChord(_ part: ChordPart, tag: String?) {
        guard let r = redis else { return }
        do {
            try ChordJoin.partReturn(part, on: r, routes: configuration.routes, logger: logger)
            if let tag { ownWrites += DeliveryClaim.ackCommands(tag: tag) }
        } catch {
            logger.error(
                "chord \(part.groupId): counting \(part.taskId) failed (\(error)); the delivery stays unacknowledged")
        }
    }

    // MARK: - claiming and starting

    /// One exchange with the broker per loop turn: send this turn's writes and, with
    /// room in the prefetch window and `claimMore`, the next claim, in one flush; then
    /// start what the previous claim took while Redis works on them. The replies are
    /// read at the connection's next use, except when the queues looked empty: then the
    /// claim is read at once, so a message that just arrived starts now. Returns how
    /// many started.
    private func exchange(_ entries: inout [Outbox.Entry], claiming: Bool, claimMore: Bool = true) -> Int {
        guard ensureConnected(), let r = redis else {
            outbox.requeue(entries)
            entries.removeAll(keepingCapacity: true)
            return 0
        }
        let completing = sendWrite(&entries, on: r)
        guard connection != nil else { return 0 }
        // Deliveries this write completes free their slots now: its replies come before
        // the claim's, and a failed write drops the connection (and the claim).
        let room = capacity - active + completing - claimedAhead.count
        var sending: String?
        do {
            let keys = configuration.claimByMove && !moveRefused ? moveKeys : []
            let plan = ClaimByMove.plan(keys: keys, lengths: lengths, room: room)
            // A claim by move replaces its claiming list: only once the last one's records are sent.
            if !claimMore {
                try r.flush()
            } else if claiming && room > 0 && !plan.isEmpty && claimingInUse.isEmpty {
                wire.removeAll(keepingCapacity: true)
                claimLists.append(plan, stamp: Self.stamp(clock.now()), to: &wire)
                try r.append(resp: wire)
                sentAhead.append(.moveClaim(plan))
                try sendLengths(keys, on: r)
                try r.flush()
                if queuesLookEmpty { settle() }
            } else if claiming && room > 0 {
                claimSerial += 1
                sending = String(claimSerial)
                if let pending = try claim.start(on: r, keys: claimKeys, max: room, serial: sending!) {
                    sending = nil
                    sentAhead.append(.claim(pending))
                    if !keys.isEmpty {
                        try sendLengths(keys, on: r)
                        try r.flush()
                    }
                    if queuesLookEmpty { settle() }
                } else {
                    try r.flush()
                    settle()  // the first claim loads the script, reading its own replies
                    tookClaim(try claim.claim(on: r, queues: queueOrder, max: room, serial: sending!), asked: room)
                    sending = nil
                }
            } else {
                try r.flush()
            }
        } catch {
            // A claim being sent when the connection broke may have run: its receipt says.
            if case .connection = error, let serial = sending { lostClaim = serial }
            if case .reply(let m) = error {
                claimRefused(m)
            } else {
                dropConnection(error)
            }
        }
        guard claiming else { return 0 }
        var deliveries: [DeliveryClaim.Delivery] = []
        swap(&deliveries, &claimedAhead)
        defer {
            deliveries.removeAll(keepingCapacity: true)
            spare.keep(deliveries: deliveries)
        }
        let now = clock.now()
        for d in deliveries { dispatch(d, now: now) }
        return deliveries.count
    }

    /// kombu rotates the queue that just delivered to the back.
    private func rotateQueues(after took: [DeliveryClaim.Delivery]) {
        guard let q = took.last?.queue, queueOrder.count > 1 else { return }
        queueOrder.removeAll { $0 == q }
        queueOrder.append(q)
    }

    private func dispatch(_ d: DeliveryClaim.Delivery, now: Double) {
        // Returned to its queue while this worker still runs it (by a peer with a shorter
        // visibility timeout than our lease renewal allows for) and claimed back here:
        // the claim re-recorded it in `unacked`, and the running task's ack clears that.
        guard held[d.tag] == nil else {
            logger.warning("delivery \(d.tag) claimed again while it is still held here; not run twice")
            return
        }
        // Decoded into a finished task's runner when one is spare (no new objects).
        let spareRunner = spareRunners.popLast()
        let message: TaskMessage
        do {
            if let spareRunner {
                try spareRunner.message.decode(d.raw, queue: d.queue, deliveryTag: d.tag)
                message = spareRunner.message
            } else {
                message = try TaskMessage.decode(d.raw, queue: d.queue, deliveryTag: d.tag)
            }
        } catch {
            if let spareRunner { spareRunners.append(spareRunner) }
            deadLetter(d, reason: error.reason)
            return
        }
        metrics.received(message.task)
        guard let task = registry.task(named: message.task) else {
            if let spareRunner { spareRunners.append(spareRunner) }
            logger.error("Received unregistered task of type '\(message.task)' (id \(message.id)); stored as FAILURE")
            let failure = TaskFailure(
                type: "NotRegistered", arguments: [.string(message.task)], module: "celery.exceptions")
            finishWithoutRunning(message, .failure, failure)
            return
        }
        let eta = message.eta
        let h =
            spareRunner?.reuse(for: task)
            ?? TaskRunner(message: message, task: task, outbox: outbox, settings: runnerSettings)
        if runnerSettings.events.get() {
            let message = h.message
            events.pending.append(
                h.event(
                    "task-received",
                    [
                        "name": .string(message.task), "args": .string(message.argsRepr),
                        "kwargs": .string(message.kwargsRepr), "root_id": message.rootId.map(JSON.string) ?? nil,
                        "parent_id": message.parentId.map(JSON.string) ?? nil, "retries": .int(Int64(message.retries)),
                        "eta": message.eta.map(JSON.string) ?? nil, "expires": message.expires.map(JSON.string) ?? nil,
                    ]))
        }
        held[d.tag] = h
        if h.limits.hard != nil { hardLimited.append(d.tag) }
        if let eta = eta.flatMap(CeleryTime.parse), eta > now {
            schedule(h, at: eta)
        } else {
            start(h, now: now)
        }
    }

    /// Run now, or schedule for when the task's rate limit allows; expired tasks end REVOKED.
    private func start(_ h: TaskRunner, now: Double) {
        if revokedSet.contains(h.message.id) {
            held[h.message.deliveryTag] = nil
            finishRevoked(h, terminated: false)
            return
        }
        if let expires = h.message.expires.flatMap(CeleryTime.parse), expires <= now {
            let m = h.message
            logger.info("Task \(m.task)[\(m.id)] expired at \(m.expires ?? ""); not run, stored as REVOKED")
            held[m.deliveryTag] = nil
            finishWithoutRunning(
                m, .revoked, TaskFailure(type: "TaskRevokedError", message: "expired", module: "celery.exceptions"))
            return
        }
        let wait = limiter.reserve(h.message.task, now: now)
        if wait > 0 {
            schedule(h, at: now + wait)
        } else {
            startedThisTurn.append(h)
        }
    }

    /// Nothing was claimed: have each queue's waker end the coming wait when a message lands
    /// (the wait's own timeout still polls the priority lists and queues added later).
    private func armWakers() {
        let now = clock.now()
        for q in queueOrder {
            if wakers[q] == nil {
                wakers[q] = QueueWaker(
                    endpoint: configuration.endpoint, listKey: QueueKeys.listKey(queue: q, priority: 0), logger: logger)
            }
            wakers[q]!.arm(now: now)
        }
    }

    /// Read the answers of the wakers whose sockets the wait found readable.
    private func wakersFired(_ sockets: [Int32], now: Double) {
        for w in wakers.values {
            if let s = w.socket, sockets.contains(s) { _ = w.fired(now: now) }
        }
    }

    /// Hand this turn's started tasks to the pool in one go (one lock, one wake-up
    /// round, instead of a condition signal per task).
    private func submitStarted() {
        guard !startedThisTurn.isEmpty else { return }
        pool.submit(contentsOf: startedThisTurn)
        startedThisTurn.removeAll(keepingCapacity: true)
    }

    func schedule(_ h: TaskRunner, at due: Double) {
        h.due = due
        let tag = h.message.deliveryTag
        let i = scheduled.firstIndex { $0.due > due } ?? scheduled.count
        scheduled.insert((due, tag), at: i)
    }

    /// Start every scheduled delivery whose time has come.
    private func startDue(_ now: Double) {
        while let first = scheduled.first, first.due <= now {
            scheduled.removeFirst()
            guard let h = held[first.tag] else { continue }
            h.due = nil
            start(h, now: now)
        }
    }

    /// Store a final state for a task that will not run, and acknowledge it.
    func finishWithoutRunning(_ m: TaskMessage, _ state: TaskState, _ failure: TaskFailure) {
        metrics.finished(m.task, outcome: state == .revoked ? "revoked" : "failed", seconds: nil)
        let record = ResultRecord(
            taskId: m.id, state: state, result: failure.resultJSON, dateDone: clock.now(), groupId: m.group,
            parentId: m.parentId)
        ownWrites += [["MULTI"]] + record.storeCommands() + DeliveryClaim.ackCommands(tag: m.deliveryTag) + [["EXEC"]]
    }

    private func deadLetter(_ d: DeliveryClaim.Delivery, reason: String) {
        logger.error("poison message from \(d.queue) (tag \(d.tag)) moved to \(configuration.deadLetterKey): \(reason)")
        let entry: JSON = [
            "reason": .string(reason), "queue": .string(d.queue), "delivery_tag": .string(d.tag),
            "worker": .string(configuration.hostname), "date": .string(CeleryTime.isoformat(clock.now())),
            "message": .string(String(decoding: d.raw, as: UTF8.self)),
        ]
        ownWrites +=
            [["MULTI"], ["LPUSH", configuration.deadLetterKey, entry.serialized()]]
            + DeliveryClaim.ackCommands(tag: d.tag) + [["EXEC"]]
    }

    // MARK: - time limits, leases, recovery

    /// Abandon tasks past their hard time limit: FAILURE `TimeLimitExceeded`, slot replaced.
    /// Abandons what is past its limit and notes the nearest future deadline for `wait`
    /// (one pass per loop turn over the held deliveries that have a hard limit).
    private func enforceHardLimits(_ now: Double) {
        nextHardDeadline = .infinity
        hardLimited.removeAll { held[$0] == nil }
        for tag in hardLimited {
            guard let h = held[tag], let started = h.started, let hard = h.limits.hard else { continue }
            guard now >= started + hard else {
                nextHardDeadline = min(nextHardDeadline, started + hard)
                continue
            }
            guard !h.isAbandoned else { continue }
            pool.abandon(h)
            guard h.isAbandoned else { continue }
            let m = h.message
            logger.error("Hard time limit (\(hard)s) exceeded for \(m.task)[\(m.id)]; slot replaced")
            held[tag] = nil
            finishWithoutRunning(
                m, .failure,
                TaskFailure(type: "TimeLimitExceeded", arguments: [.double(hard)], module: "billiard.exceptions"))
        }
    }

    /// Re-stamp the lease (`unacked_index` score) of everything held, so no live delivery looks stale.
    private func renewLeases(_ now: Double) {
        guard now >= nextLease else { return }
        nextLease = now + configuration.leaseInterval
        let tags = Array(held.keys)
        let stamp = Self.stamp(now)  // whole seconds, as the claim writes them
        for chunk in stride(from: 0, to: tags.count, by: 500) {
            var cmd = ["ZADD", DeliveryClaim.unackedIndexKey, "XX"]
            for tag in tags[chunk..<min(chunk + 500, tags.count)] { cmd += [stamp, tag] }
            ownWrites.append(cmd)
        }
    }

    /// Return deliveries whose lease went stale (their worker died) to their queues.
    private func recoverStale(_ now: Double) {
        guard now >= nextRecovery, let r = redis else { return }
        nextRecovery = now + configuration.recoveryInterval
        do {
            let n = try restore.recoverStale(on: r, visibilityTimeout: configuration.visibilityTimeout, now: now)
            if n > 0 { logger.warning("restored \(n) unacknowledged message(s) past the visibility timeout") }
            let moved = try ClaimByMove.restoreStale(ceiling: now - configuration.visibilityTimeout, on: r)
            if moved > 0 { logger.warning("restored \(moved) message(s) from a dead worker's claiming list") }
        } catch {
            dropConnection(error)
        }
    }

    // MARK: - stopping

    /// Warm stop: give back everything claimed but not started.
    private func returnUnstarted() {
        let queued = pool.takeQueued().map(\.message.deliveryTag)
        let waiting = scheduled.map(\.tag)
        scheduled.removeAll()
        let ahead = takeClaimedAhead()
        let tags = queued + waiting + ahead.map(\.tag)
        guard giveBack(tags) else {
            claimedAhead = ahead
            for tag in queued { if let h = held[tag] { schedule(h, at: 0) } }
            for tag in waiting { if let h = held[tag] { schedule(h, at: h.due ?? 0) } }
            Thread.sleep(forTimeInterval: 0.2)
            return
        }
        unstartedReturned = true
        if !tags.isEmpty { logger.info("warm shutdown: returned \(tags.count) unstarted message(s) to their queues") }
    }

    /// Cold stop: give back everything held, running tasks included.
    private func leave(returning tags: [String]) {
        _ = pool.takeQueued()
        var rest = outbox.take(waitingUpTo: 0)
        write(&rest)
        let pending = tags.filter { held[$0] != nil } + takeClaimedAhead().map(\.tag)
        if giveBack(pending), !pending.isEmpty {
            logger.warning(
                "cold shutdown: returned \(pending.count) message(s), running ones included, to their queues")
        }
    }

    /// Restore tags to their queues; true on success (or nothing to do).
    private func giveBack(_ tags: [String]) -> Bool {
        guard !tags.isEmpty else { return true }
        writeOwn()
        guard ensureConnected(), let r = redis else { return false }
        do {
            try restore.returnDeliveries(tags, on: r)
            for tag in tags { held[tag] = nil }
            return true
        } catch {
            dropConnection(error)
            return false
        }
    }
}
