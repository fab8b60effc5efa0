import Logging

/// The worker's broker connection and what is in flight on it. Each turn's writes
/// (outbox entries and the roles' own commands, in one `WriteBatch`) and the next
/// claim go out together; their replies are read later, in order, by `settle`, so
/// Redis works while the worker starts the previous claim's tasks. Nothing here reads
/// a reply as a side effect: a caller that wants the connection to itself settles first
/// (`Consumer.settledConnection()`).
///
///     pipeline.sendWrite(&entries) { _ in }
///     try pipeline.sendClaim(room: 64, queues: ["celery"], now: clock.now())
///     let confirmed = pipeline.settle(reusing: &spare) { reply in fetcher.apply(reply, now: now) }
final class BrokerPipeline {
    /// Work written whose replies are not read yet, oldest first.
    enum SentAhead {
        /// `entries` outbox entries (the next ones in `written`) and the roles' own
        /// commands, sent as one `WriteBatch`.
        case write(entries: Int, own: [[String]], replies: Int)
        /// A part of a claim (`ClaimStrategy`).
        case claim(ClaimInFlight)

        /// The outbox entries a write carries (none for a claim).
        var entries: Int { if case .write(let n, _, _) = self { n } else { 0 } }
    }

    // Exclusivity: the pipeline is used on the consumer's thread only: the run-time check is pure cost.
    @exclusivity(unchecked) private(set) var connection: RedisConnection? {
        didSet {
            isConnected.set(connection != nil)
            server.set(connection?.server)
        }
    }
    /// Whether there is a connection now, readable from any thread (tests wait on it).
    let isConnected = LockedBox(false)
    /// The server connected to now (the master the sentinels named, say), readable from any thread.
    let server = LockedBox<RedisEndpoint?>(nil)
    let claim: any ClaimStrategy
    /// Commands the worker's roles add to the next write: results of tasks that did not
    /// run with their acks, lease renewals, events, remote-control replies.
    @exclusivity(unchecked) var own: [[String]] = []
    private let outbox: Outbox
    private let logger: Logger
    private let clock: any WallClock
    @exclusivity(unchecked) private var sentAhead: [SentAhead] = []
    /// `settle`'s list of what it reads, kept between turns for its storage.
    @exclusivity(unchecked) private var settling: [SentAhead] = []
    /// A claim's parts as it sends them, kept for its storage.
    @exclusivity(unchecked) private var claimParts: [ClaimInFlight] = []
    /// Outbox entries written and not yet confirmed, oldest first (the `.write`s in
    /// `sentAhead` count them off in order).
    @exclusivity(unchecked) private var written: [Outbox.Entry] = []
    /// The write being built, written buffers on their way back to the outbox, and the
    /// claim records' encoding: kept between turns for their storage.
    @exclusivity(unchecked) private var batch = WriteBatch()
    @exclusivity(unchecked) private var spent: [[UInt8]] = []
    @exclusivity(unchecked) private var wire: [UInt8] = []
    /// Outbox entries of writes Redis refused (`WriteFailure`), and those posted since,
    /// in order: sent again, before anything newer, from `retryAt`. Their deliveries stay
    /// held (leased), so nothing reruns while Redis is out of memory, read-only or loading.
    @exclusivity(unchecked) private var retrying: [Outbox.Entry] = []
    /// No write goes out before this time while `retrying` or `own` waits (the last write was refused).
    @exclusivity(unchecked) private(set) var retryAt = 0.0
    @exclusivity(unchecked) private var backoff = 0.0
    /// The first retry waits this long, each next one twice as long, up to `maxBackoff`.
    static let minBackoff = 0.05
    static let maxBackoff = 2.0
    private let metrics: WorkerMetrics
    /// Writes refused or lost so far, by reason (`WriteFailure.reason`).
    let failures = LockedBox<[String: Int]>([:])

    init(
        claim: any ClaimStrategy, outbox: Outbox, clock: any WallClock, logger: Logger,
        metrics: WorkerMetrics = WorkerMetrics(enabled: false)
    ) {
        self.claim = claim
        self.outbox = outbox
        self.clock = clock
        self.logger = logger
        self.metrics = metrics
    }

    /// Writes wait to be sent again (Redis refused the last one): nothing held may be let go
    /// as if written, and the loop wakes at `retryAt`.
    var hasPendingWrites: Bool { !retrying.isEmpty }

    /// Redis refused a write and none has landed since (the backoff runs or the retry is in
    /// flight): the worker claims nothing more meanwhile, since the deliveries of the refused
    /// writes stay held and a claim would only add to them.
    var hasRefusedWrites: Bool { backoff > 0 }

    /// Whether a write may go out now (none was refused, or its backoff has passed).
    private var mayWrite: Bool { backoff == 0 || clock.now() >= retryAt }

    /// Writes wait for the backoff after a refusal: commands that would only be superseded
    /// by the time they go out (lease renewals) are better not added now.
    var isHoldingWrites: Bool { !mayWrite }

    /// Whether replies are awaited.
    var isWaiting: Bool { !sentAhead.isEmpty }

    /// Use `r` from now on (nothing is in flight).
    func connected(_ r: RedisConnection) { connection = r }

    /// Forget the connection: writes in flight go back to be sent again, and what a
    /// claim in flight took stays in `unacked` until its lease runs out (the claim
    /// strategy puts back what it can at the next connect).
    func drop(_ error: RedisError? = nil) {
        if let error { logger.warning("lost Redis: \(error); reconnecting") }
        connection = nil
        let ops = sentAhead
        sentAhead.removeAll()
        lost(ops[...])
    }

    /// Queue this turn's outbox `entries` and the own commands without waiting
    /// (`settle` reads the replies); returns how many deliveries they complete.
    /// `prepare` filters the entries once the claim records are queued. `entries` is
    /// left empty (its storage kept): they are in `written`, or back in the outbox.
    @discardableResult
    func sendWrite(_ entries: inout [Outbox.Entry], prepare: (inout [Outbox.Entry]) -> Void) -> Int {
        defer { entries.removeAll(keepingCapacity: true) }
        guard let r = connection else {
            outbox.requeue(entries)
            return 0
        }
        let replies: Int
        do {
            // Records of claimed deliveries go before any write that could acknowledge one.
            wire.removeAll(keepingCapacity: true)
            if claim.hasUnrecorded, let records = claim.appendRecords(stamp: Leases.stamp(clock.now()), to: &wire) {
                try r.append(resp: wire)
                sentAhead.append(.claim(.records(replies: records)))
            }
            guard mayWrite else {
                // Redis refused the last write: hold these behind it (the loop waits until `retryAt`).
                retrying += entries
                return 0
            }
            if !retrying.isEmpty {
                swap(&entries, &retrying)
                entries += retrying
                retrying.removeAll()
            }
            prepare(&entries)
            guard !entries.isEmpty || !own.isEmpty else { return 0 }
            // The roles' own writes go last: a REVOKED or TimeLimitExceeded record must
            // land after any progress its abandoned task had already posted.
            defer { batch.removeAll() }  // let go of the parts: their buffers go back to the executors
            for e in entries { batch.add(e.part) }
            batch.add(own: own)
            try batch.append(to: r)
            replies = batch.replies
        } catch {
            drop(error)
            outbox.requeue(entries)
            return 0
        }
        written += entries
        sentAhead.append(.write(entries: entries.count, own: own, replies: replies))
        own.removeAll()
        return entries.count { $0.completes != nil }
    }

    /// Queue and flush the next claim (the strategy's parts go to `sentAhead`).
    func sendClaim(room: Int, queues: [String], now: Double) throws(RedisError) {
        guard let r = connection else { return }
        claimParts.removeAll(keepingCapacity: true)
        defer { for part in claimParts { sentAhead.append(.claim(part)) } }
        try claim.send(room: room, queues: queues, now: now, on: r, into: &claimParts)
    }

    /// Flush what is queued.
    func flush() throws(RedisError) { try connection?.flush() }

    /// Read the replies of what was sent ahead, in order: each claim part's reply goes
    /// to `claimed` (claimed messages are copied into `spare`'s buffers while it has
    /// any). Returns how many of the first entries in `written` were confirmed
    /// (`confirm` frees them). A broken connection is dropped here.
    func settle(reusing spare: inout SpareBuffers, _ claimed: (ClaimReply) -> Void) -> Int {
        guard !sentAhead.isEmpty, let r = connection else { return 0 }
        var ops: [SentAhead] = []
        swap(&ops, &settling)
        swap(&ops, &sentAhead)
        defer {
            ops.removeAll(keepingCapacity: true)
            settling = ops
        }
        // Per written entry (in `written`'s order): whether it is done, and what of it is
        // sent again. Only what Redis refused goes again: a plain command that landed is
        // done; the batch's transaction is all-or-nothing, and from the first one refused
        // on, every later transaction of this settle goes again too (in order: a later one
        // may hold the same task's result after its progress).
        var verdicts: [EntryVerdict] = []
        var refusedReason: String?
        var transactionRefused = false
        var ownKept: [[String]] = []
        var next = 0  // the next entry of `written` to read the replies of
        var errors: [String] = []
        var demoted: String?  // a claim refused as on a replica
        for (i, op) in ops.enumerated() {
            do {
                switch op {
                case .write(let count, let commands, _):
                    let entries = written[next..<(next + count)]
                    var refusedPlain: [[Int]] = []
                    for e in entries {
                        var refused: [Int] = []
                        for k in 0..<e.part.plainCount {
                            let errs = try r.readErrors()
                            guard let first = errs.first else { continue }
                            if let failure = WriteFailure(errors: errs) {
                                refusedReason = refusedReason ?? failure.reason
                                if refused.isEmpty {
                                    logger.error("Redis refused a command (\(failure.message)); sent again")
                                }
                                refused.append(k)
                            } else {
                                logger.error("write failed: \(first)")
                            }
                        }
                        refusedPlain.append(refused)
                    }
                    if entries.contains(where: { $0.part.hasTransaction }) {
                        errors.removeAll(keepingCapacity: true)
                        let acked = entries.contains { $0.part.acked != nil }
                        let queued = entries.reduce(0) { $0 + $1.part.transactionCount } + (acked ? 2 : 0)
                        for _ in 0..<(queued + 1) { errors += try r.readErrors() }  // MULTI and the queued commands
                        let execRefused = try r.read { reply in
                            errors += reply.errors
                            return reply.isError
                        }
                        if execRefused, let failure = WriteFailure(errors: errors) {
                            refusedReason = refusedReason ?? failure.reason
                            if !transactionRefused {
                                logger.error(
                                    "Redis refused a write (\(failure.message)); its completion(s) kept and sent again")
                            }
                            transactionRefused = true
                        } else {
                            // (One that landed after an earlier one was refused is sent again behind it, in order.)
                            for e in errors { logger.error("write failed: \(e)") }
                        }
                    }
                    for (j, e) in entries.enumerated() {
                        verdicts.append(
                            EntryVerdict(
                                refusedPlain: refusedPlain[j],
                                transactionRefused: e.part.hasTransaction && transactionRefused))
                    }
                    next += count
                    ownKept += try settleOwn(commands, on: r, reason: &refusedReason)
                case .claim(let part):
                    let reply = try claim.read(part, on: r, reusing: &spare)
                    if case .refused(let m) = reply, QueueWaker.meansFailover(m) { demoted = m }
                    claimed(reply)
                }
            } catch {
                logger.warning("lost Redis: \(error); reconnecting")
                connection = nil
                // The entries of the write whose replies were being read are lost with the
                // later ones (`lost` takes them back from the end of `written`).
                let answered = ops[..<i].reduce(0) { $0 + $1.entries }
                if verdicts.count > answered { verdicts.removeLast(verdicts.count - answered) }
                lost(ops[i...])
                break
            }
        }
        // `lost` took back the writes after the connection broke: `written` holds the read ones.
        var done: [Outbox.Entry] = []
        var kept: [Outbox.Entry] = []
        for (e, v) in zip(written, verdicts) {
            var e = e
            if v.transactionRefused {
                e.part.keepPlain { v.refusedPlain.contains($0) }
                e.event = nil  // its task event is already on its way
                kept.append(e)
            } else if v.refusedPlain.isEmpty {
                done.append(e)
            } else if e.part.hasTransaction {
                // Its transaction landed (its delivery is done): only the refused commands go again.
                var rest = Outbox.Entry(part: e.part.plainOnly)
                rest.part.keepPlain { v.refusedPlain.contains($0) }
                kept.append(rest)
                done.append(e)
            } else {
                e.part.keepPlain { v.refusedPlain.contains($0) }
                e.event = nil
                kept.append(e)
            }
        }
        written = done
        if let reason = refusedReason {
            failed(reason)
            retrying = kept + retrying
            own = ownKept + own
            backoff = min(max(Self.minBackoff, backoff * 2), Self.maxBackoff)
            retryAt = clock.now() + backoff
            if reason == "readonly" { demoted = demoted ?? "READONLY" }
        } else if ops.contains(where: { if case .write = $0 { true } else { false } }), connection != nil {
            backoff = 0
        }
        if let demoted, let r = connection, r.endpoint.sentinel != nil {
            // The server is a replica now (a failover demoted it while this link stayed up): the
            // link is lost as far as the worker goes. The refused writes wait in `retrying` for the
            // next connection, which asks the endpoint (the sentinels) for the master again.
            logger.warning("Redis is read-only now (\(demoted)): a failover? connecting to the master again")
            connection = nil
        }
        return done.count
    }

    /// What a settled write did with one outbox entry.
    private struct EntryVerdict {
        /// Its plain commands Redis refused (by index), to send again.
        var refusedPlain: [Int]
        /// Its transaction was refused (or follows one that was): sent again, its delivery held.
        var transactionRefused: Bool
    }

    /// Read the replies of the own `commands` of a write; returns those to send again:
    /// a command Redis refused (`WriteFailure`), a MULTI … EXEC group whose EXEC it refused.
    /// Events (PUBLISH) are not sent again: a refused one is dropped.
    private func settleOwn(_ commands: [[String]], on r: RedisConnection, reason: inout String?) throws(RedisError)
        -> [[String]]
    {
        var kept: [[String]] = []
        var group: (start: Int, errors: [String])?
        for (k, c) in commands.enumerated() {
            let errs = try r.readErrors()
            let verb = c.first ?? ""
            if verb == "MULTI" {
                group = (k, errs)
                continue
            }
            if var g = group {
                g.errors += errs
                group = g
                guard verb == "EXEC" else { continue }
                group = nil
                if !errs.isEmpty, let failure = WriteFailure(errors: g.errors) {
                    reason = reason ?? failure.reason
                    kept += commands[g.start...k]
                } else {
                    for e in g.errors { logger.error("write failed: \(e)") }
                }
                continue
            }
            guard let first = errs.first else { continue }
            if let failure = WriteFailure(errors: errs), verb != "PUBLISH" {
                reason = reason ?? failure.reason
                kept.append(c)
            } else {
                logger.error("write failed: \(first)")
            }
        }
        return kept
    }

    /// Count a write that did not land (the metric and `failures`).
    private func failed(_ reason: String) {
        failures.modify { $0[reason, default: 0] += 1 }
        metrics.writeFailed(reason: reason)
    }

    /// The chord parts among the first `count` written entries (confirmed), in order,
    /// with the delivery each completes.
    func forEachConfirmedChordPart(_ count: Int, _ body: (ChordPart, String?) -> Void) {
        for i in 0..<count { if let part = written[i].chord { body(part, written[i].completes) } }
    }

    /// Let go of the first `count` written entries (confirmed): `completed` gets the
    /// delivery each completes; their transaction buffers go back to the outbox for the
    /// executors' next parts.
    func confirm(first count: Int, _ completed: (String) -> Void) {
        guard count > 0 else { return }
        for i in 0..<count {
            let b = written[i].part.takeTransactionBuffer()
            if b.capacity > 0 { spent.append(b) }
            if let tag = written[i].completes { completed(tag) }
        }
        written.removeFirst(count)
        outbox.recycle(&spent)
    }

    /// What `ops` (the last ones sent, unanswered) leave behind: writes go back to be
    /// sent again (their entries are the last in `written`), the claim forgets its parts.
    private func lost(_ ops: ArraySlice<SentAhead>) {
        var entries = 0
        var writes = 0
        var ownLost: [[String]] = []
        var parts: [ClaimInFlight] = []
        for op in ops {
            switch op {
            case .write(let n, let commands, _):
                entries += n
                writes += 1
                ownLost += commands
            case .claim(let part): parts.append(part)
            }
        }
        for _ in 0..<writes { failed("connection") }
        claim.connectionLost(inFlight: parts)
        outbox.requeue(Array(written.suffix(entries)))
        written.removeLast(entries)
        if !ownLost.isEmpty { own = ownLost + own }
    }
}
