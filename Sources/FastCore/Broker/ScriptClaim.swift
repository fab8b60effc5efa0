/// Claims with the claim script (`DeliveryClaim`): each claim pops a batch and records
/// it in kombu's `unacked` in one step, and writes a receipt (its serial and tags), so
/// a claim whose reply is lost with the connection is put back at the next connect,
/// not at the visibility timeout.
///
///     let claim = ScriptClaim(hostname: "w1@host")
///     try claim.send(room: 64, queues: ["celery"], now: clock.now(), on: redis, into: &inFlight)
final class ScriptClaim: ClaimStrategy {
    let claim: DeliveryClaim
    // Exclusivity: a claim is used on the consumer's thread only: the run-time check is pure cost.
    /// The next claim's serial (its receipt's first line): a random start, then counting.
    @exclusivity(unchecked) private var serial = UInt64.random(in: 1..<(1 << 40))
    /// A claim whose reply the connection took with it (its serial).
    @exclusivity(unchecked) private(set) var lostSerial: String?
    /// The script's keys for the last queue order (made again only when it changes).
    @exclusivity(unchecked) private var keysOrder: [String] = []
    @exclusivity(unchecked) private var keys: [String] = []

    /// The default bound on one claim's bytes.
    static let maxClaimBytes = DeliveryClaim.defaultClaimBytes

    /// `claimBytes`: a claim stops taking messages once it holds this many bytes (it always takes one).
    init(hostname: String, claimBytes: Int = maxClaimBytes) {
        claim = DeliveryClaim(receiptKey: DeliveryClaim.receiptKey(hostname: hostname), claimBytes: claimBytes)
    }

    func send(
        room: Int, queues: [String], now: Double, on redis: RedisConnection, into inFlight: inout [ClaimInFlight]
    )
        throws(RedisError)
    {
        if keysOrder != queues {
            keysOrder = queues
            keys = claim.keys(queues)
        }
        serial += 1
        let sending = String(serial)
        do throws(RedisError) {
            // The script is loaded at connect (`connected`); a Redis that lost it since answers
            // NOSCRIPT, and `read` reports it.
            guard let pending = try claim.start(on: redis, keys: keys, max: room, serial: sending) else {
                throw .connection("the claim script is not loaded")
            }
            inFlight.append(.script(pending))
        } catch {
            // A claim being sent when the connection broke may have run: its receipt says.
            if case .connection = error { lostSerial = sending }
            throw error
        }
    }

    func read(_ part: ClaimInFlight, on redis: RedisConnection, reusing spare: inout SpareBuffers)
        throws(RedisError) -> ClaimReply
    {
        guard case .script(let pending) = part else { return .none }
        do throws(RedisError) {
            guard let took = try claim.finish(pending, on: redis, reusing: &spare) else { return .scriptLost(pending) }
            // A claim its byte bound stopped short says nothing of the queues' being drained.
            if took.count < pending.max, let bound = claim.claimBytes, took.reduce(0, { $0 + $1.raw.count }) >= bound {
                return .took(took, asked: nil)
            }
            return .took(took, asked: pending.max)
        } catch {
            guard case .reply(let m) = error else { throw error }
            return .refused(m)
        }
    }

    func retry(_ pending: DeliveryClaim.Pending, on redis: RedisConnection) throws(RedisError) -> [Delivery] {
        do throws(RedisError) {
            return try claim.retry(pending, on: redis)
        } catch {
            if case .connection = error { lostSerial = pending.serial }
            throw error
        }
    }

    func appendRecords(stamp: String, to wire: inout [UInt8]) -> Int? { nil }
    var hasUnrecorded: Bool { false }

    func connectionLost(inFlight: some Collection<ClaimInFlight>) {
        for part in inFlight { if case .script(let pending) = part { lostSerial = pending.serial } }
    }

    func connected(on redis: RedisConnection, held: (String) -> Bool) throws(RedisError) -> Int {
        _ = try DeliveryClaim.script.load(on: redis)
        guard let serial = lostSerial else { return 0 }
        let tags = try claim.receipt(of: serial, on: redis).filter { !held($0) }
        let returned = try DeliveryRestore().returnDeliveries(tags, on: redis)
        lostSerial = nil
        return returned
    }

    func stopped(on redis: RedisConnection) {
        // A clean stop leaves no receipt behind (no claim of this worker is unanswered).
        if let key = claim.receiptKey, lostSerial == nil { _ = try? redis.command("DEL", key) }
    }
}
