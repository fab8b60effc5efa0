import Logging

/// Claims by move (`--claim move`, `ClaimByMove`): while the last read lengths show
/// messages waiting, each claim moves a batch of each list into this worker's claiming
/// list in one transaction, and the next write records them in kombu's `unacked`
/// (`appendRecords`). While the lengths are unknown or zero, or the last claim by move
/// is not recorded yet (its records are in flight, or were refused and wait to be sent
/// again), it claims with the script; every claim is followed by an LLEN of each list.
/// Where Redis refuses the move (an ACL without `SORT`), it claims with the script from
/// then on; a refusal that is the server's state (OOM, READONLY, LOADING…) pauses claims. A claim's registration and its records are stamped in
/// Redis's time (`LeaseClock`), as the script stamps its leases.
///
///     let claim = MoveClaim(hostname: "w1@host", logger: log)
///     try claim.send(room: 64, queues: ["celery"], now: clock.now(), on: redis, into: &inFlight)
final class MoveClaim: ClaimStrategy {
    private let lists: ClaimByMove
    private let script: ScriptClaim
    private let logger: Logger
    // Exclusivity: a claim is used on the consumer's thread only: the run-time check is pure cost.
    /// The consumed lists in consume order, for the last queue order.
    @exclusivity(unchecked) private var listsOrder: [String] = []
    @exclusivity(unchecked) private var listKeys: [String] = []
    /// The consumed lists' lengths as last read.
    @exclusivity(unchecked) private var lengths: [String: Int] = [:]
    /// kombu records of what was taken and not yet recorded, and the claiming lists to empty with them.
    @exclusivity(unchecked) private var unrecorded: [ClaimByMove.Taken] = []
    @exclusivity(unchecked) private var claimingInUse: Set<String> = []
    /// Their records are sent and not answered yet (`appendRecords`, read as `.records`).
    @exclusivity(unchecked) private var recording = false
    /// Redis refused their last records (out of memory, a replica…): sent again.
    @exclusivity(unchecked) private var recordsRefused = false
    /// Redis refused a claim by move for good (an ACL without `SORT`, a renamed command):
    /// the script claims for the rest of the run. A refusal that is the server's state
    /// (out of memory, a replica, loading: `WriteFailure`) only pauses claims.
    @exclusivity(unchecked) private(set) var refused = false
    /// Commands this claim encodes, kept for its storage.
    @exclusivity(unchecked) private var wire: [UInt8] = []
    /// This worker's view of Redis's time (nil: its own clock's, as given).
    private let leaseClock: LeaseClock?
    /// The last claim by move's lease stamp, in Redis's time: its records carry it.
    @exclusivity(unchecked) private var claimStamp: String?
    /// The bound on one claim's bytes, and the largest message the last claim that took
    /// any returned: a claim by move cannot see sizes before it moves, so it moves at most
    /// as many as the bound holds of messages that large (at least one).
    private let claimBytes: Int
    @exclusivity(unchecked) private var largest = 0

    init(hostname: String, logger: Logger, leaseClock: LeaseClock? = nil, claimBytes: Int = ScriptClaim.maxClaimBytes) {
        lists = ClaimByMove(hostname: hostname)
        script = ScriptClaim(hostname: hostname, claimBytes: claimBytes)
        self.logger = logger
        self.leaseClock = leaseClock
        self.claimBytes = claimBytes
    }

    func send(
        room: Int, queues: [String], now: Double, on redis: RedisConnection, into inFlight: inout [ClaimInFlight]
    )
        throws(RedisError)
    {
        if refused {
            try script.send(room: room, queues: queues, now: now, on: redis, into: &inFlight)
            return
        }
        if listsOrder != queues {
            listsOrder = queues
            listKeys = QueueKeys.consumeOrder(queues: queues)
        }
        let bounded = largest > 0 ? min(room, max(1, claimBytes / largest)) : room
        let plan = ClaimByMove.plan(keys: listKeys, lengths: lengths, room: bounded)
        // A claim by move replaces its claiming list: only once the last one's records are sent.
        if !plan.isEmpty && claimingInUse.isEmpty {
            wire.removeAll(keepingCapacity: true)
            let stamp = leaseClock?.stamp(now) ?? Leases.stamp(now)
            claimStamp = stamp
            lists.append(plan, stamp: stamp, to: &wire)
            try redis.append(resp: wire)
            inFlight.append(.move(plan))
        } else {
            try script.send(room: room, queues: queues, now: now, on: redis, into: &inFlight)
        }
        wire.removeAll(keepingCapacity: true)
        for key in listKeys { RESP.append(command: "LLEN", key, to: &wire) }
        try redis.append(resp: wire)
        inFlight.append(.lengths(listKeys))
        try redis.flush()
    }

    func read(_ part: ClaimInFlight, on redis: RedisConnection, reusing spare: inout SpareBuffers)
        throws(RedisError) -> ClaimReply
    {
        switch part {
        case .script:
            let reply = try script.read(part, on: redis, reusing: &spare)
            if case .took(let took, _) = reply { noteSizes(took) }
            return reply
        case .move(let plan):
            for (key, _) in plan { claimingInUse.insert(lists.claimingKey(key)) }
            // Taken straight into `unrecorded`: recorded by the next write, before
            // anything that could acknowledge one.
            let from = unrecorded.count
            let outcome = try lists.read(plan, on: redis, reusing: &spare, into: &unrecorded)
            if let first = outcome.errors.first {
                if let failure = WriteFailure(errors: outcome.errors), !outcome.executed {
                    // Out of memory, a replica, loading…: nothing moved; the next claim
                    // waits a while (`Fetcher`) and tries the move again.
                    for (key, _) in plan { claimingInUse.remove(lists.claimingKey(key)) }
                    return .refused(failure.message)
                }
                // The reconnect returns whatever was moved. ACLs that deny SORT (it is in
                // @dangerous), a renamed command, …: from then on the script claims.
                if WriteFailure(errors: outcome.errors) == nil {
                    logger.error("Redis refused the claim by move (\(first)); claiming with the script from now on")
                    refused = true
                }
                throw .reply(first)
            }
            var took = spare.deliveryList()
            for t in unrecorded[from...] { took.append(Delivery(tag: t.tag, listKey: t.listKey, raw: t.raw)) }
            noteSizes(took)
            return .took(took, asked: nil)
        case .lengths(let keys):
            for key in keys { lengths[key] = Int(try redis.read().integer ?? 0) }
            return .lengths(allEmpty: keys.allSatisfy { lengths[$0] == 0 })
        case .records(let replies):
            var errors: [String] = []
            var aborted = false
            for i in 0..<replies {
                try redis.read { r in  // the last is EXEC's
                    errors += r.errors
                    if i == replies - 1 { aborted = r.isError }
                }
            }
            recording = false
            if aborted {
                // Refused whole (OOM, READONLY, an ACL…: EXECABORT): the claiming lists still
                // hold the messages, and stay this claim's (no move replaces them) until a
                // later write records them.
                let reason = WriteFailure(errors: errors)?.message ?? errors.first ?? "EXEC aborted"
                logger.error("Redis refused the records of a claim by move (\(reason)); sent again")
                recordsRefused = true
                return .none
            }
            // Recorded (an error inside the transaction did not stop its other commands:
            // the claiming lists are emptied either way).
            for e in errors { logger.error("recording claimed deliveries failed: \(e)") }
            unrecorded.removeAll(keepingCapacity: true)
            claimingInUse.removeAll(keepingCapacity: true)
            recordsRefused = false
            return .none
        }
    }

    func retry(_ pending: DeliveryClaim.Pending, on redis: RedisConnection) throws(RedisError) -> [Delivery] {
        try script.retry(pending, on: redis)
    }

    /// Keep the largest message of a claim that took any (what bounds the next move).
    private func noteSizes(_ took: [Delivery]) {
        guard !took.isEmpty else { return }
        var most = 0
        for d in took where d.raw.count > most { most = d.raw.count }
        largest = most
    }

    func appendRecords(stamp: String, to wire: inout [UInt8]) -> Int? {
        guard !claimingInUse.isEmpty, !recording else { return nil }
        // The claim's own stamp (Redis's time), not the caller's (this worker's clock); a
        // record sent again after a refusal is stamped now (in Redis's time).
        var stamp = leaseClock == nil ? stamp : claimStamp ?? stamp
        if recordsRefused, let leaseClock { stamp = leaseClock.stamp(leaseClock.clock.now()) }
        let replies = lists.appendRecords(unrecorded, claiming: claimingInUse, stamp: stamp, to: &wire)
        // Kept (and their claiming lists in use) until Redis answers: a refused record is
        // sent again, and no claim by move replaces a list whose records did not land.
        recording = true
        return replies
    }

    var hasUnrecorded: Bool { !claimingInUse.isEmpty && !recording }

    func connectionLost(inFlight: some Collection<ClaimInFlight>) {
        script.connectionLost(inFlight: inFlight)
        // What claims by move took and did not record goes back to its queues at the next
        // connect (`ClaimByMove.restoreOwn`): their records may or may not have landed.
        unrecorded.removeAll()
        claimingInUse.removeAll()
        recording = false
        recordsRefused = false
        lengths.removeAll()
    }

    func connected(on redis: RedisConnection, held: (String) -> Bool) throws(RedisError) -> Int {
        try script.connected(on: redis, held: held)
    }

    func stopped(on redis: RedisConnection) { script.stopped(on: redis) }
}
