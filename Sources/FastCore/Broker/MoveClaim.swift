import Logging

/// Claims by move (`--claim move`, `ClaimByMove`): while the last read lengths show
/// messages waiting, each claim moves a batch of each list into this worker's claiming
/// list in one transaction, and the next write records them in kombu's `unacked`
/// (`appendRecords`). While the lengths are unknown or zero, or the last claim by move
/// is not recorded yet, it claims with the script; every claim is followed by an LLEN
/// of each list. Where Redis refuses the move (an ACL without `SORT`), it claims with
/// the script from then on.
///
///     let claim = MoveClaim(hostname: "w1@host", logger: log)
///     try claim.send(room: 64, queues: ["celery"], now: clock.now(), on: redis, into: &inFlight)
final class MoveClaim: ClaimStrategy {
    private let lists: ClaimByMove
    private let script: ScriptClaim
    private let logger: Logger
    /// The consumed lists in consume order, for the last queue order.
    private var listsOrder: [String] = []
    private var listKeys: [String] = []
    /// The consumed lists' lengths as last read.
    private var lengths: [String: Int] = [:]
    /// kombu records of what was taken and not yet recorded, and the claiming lists to empty with them.
    private var unrecorded: [ClaimByMove.Taken] = []
    private var claimingInUse: Set<String> = []
    /// Redis answered a claim by move with an error: the script claims for the rest of the run.
    private(set) var refused = false
    /// Commands this claim encodes, kept for its storage.
    private var wire: [UInt8] = []

    init(hostname: String, logger: Logger) {
        lists = ClaimByMove(hostname: hostname)
        script = ScriptClaim(hostname: hostname)
        self.logger = logger
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
        let plan = ClaimByMove.plan(keys: listKeys, lengths: lengths, room: room)
        // A claim by move replaces its claiming list: only once the last one's records are sent.
        if !plan.isEmpty && claimingInUse.isEmpty {
            wire.removeAll(keepingCapacity: true)
            lists.append(plan, stamp: Leases.stamp(now), to: &wire)
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
            return try script.read(part, on: redis, reusing: &spare)
        case .move(let plan):
            for (key, _) in plan { claimingInUse.insert(lists.claimingKey(key)) }
            // Taken straight into `unrecorded`: recorded by the next write, before
            // anything that could acknowledge one.
            let from = unrecorded.count
            do throws(RedisError) {
                try lists.deliveries(plan, on: redis, reusing: &spare, into: &unrecorded)
            } catch {
                if case .reply(let m) = error {
                    // ACLs that deny SORT (it is in @dangerous), a renamed command, …: the
                    // reconnect returns whatever was moved; from then on the script claims.
                    logger.error("Redis refused the claim by move (\(m)); claiming with the script from now on")
                    refused = true
                }
                throw error
            }
            var took = spare.deliveryList()
            for t in unrecorded[from...] { took.append(Delivery(tag: t.tag, listKey: t.listKey, raw: t.raw)) }
            return .took(took, asked: nil)
        case .lengths(let keys):
            for key in keys { lengths[key] = Int(try redis.read().integer ?? 0) }
            return .lengths(allEmpty: keys.allSatisfy { lengths[$0] == 0 })
        case .records(let replies):
            for _ in 0..<replies {
                for e in try redis.readErrors() { logger.error("recording claimed deliveries failed: \(e)") }
            }
            return .none
        }
    }

    func retry(_ pending: DeliveryClaim.Pending, on redis: RedisConnection) throws(RedisError) -> [Delivery] {
        try script.retry(pending, on: redis)
    }

    func appendRecords(stamp: String, to wire: inout [UInt8]) -> Int? {
        guard !claimingInUse.isEmpty else { return nil }
        let replies = lists.appendRecords(unrecorded, claiming: claimingInUse, stamp: stamp, to: &wire)
        unrecorded.removeAll(keepingCapacity: true)
        claimingInUse.removeAll(keepingCapacity: true)
        return replies
    }

    var hasUnrecorded: Bool { !claimingInUse.isEmpty }

    func connectionLost(inFlight: some Collection<ClaimInFlight>) {
        script.connectionLost(inFlight: inFlight)
        // What claims by move took and did not record goes back to its queues at the next
        // connect (`ClaimByMove.restoreOwn`): their records may or may not have landed.
        unrecorded.removeAll()
        claimingInUse.removeAll()
        lengths.removeAll()
    }

    func connected(on redis: RedisConnection, held: (String) -> Bool) throws(RedisError) -> Int {
        try script.connected(on: redis, held: held)
    }

    func stopped(on redis: RedisConnection) { script.stopped(on: redis) }
}
