import Logging

/// The seam between the worker engine and how it claims deliveries: `ScriptClaim`
/// (one Lua script pops a batch and records it in kombu's `unacked`, the default) and
/// `MoveClaim` (`--claim move`: a transaction moves each batch into the worker's
/// claiming list, and the worker's next write records it).
///
/// The engine sends a claim ahead with its turn's writes (`send`), and reads each
/// part of it in its turn among the connection's replies (`read`). Whatever must be
/// written before anything can acknowledge a claimed delivery comes first in the next
/// write (`appendRecords`).
///
///     var claim: any ClaimStrategy = ScriptClaim(hostname: "w1@host")
///     _ = try claim.connected(on: redis, held: { _ in false })
///     try claim.send(room: 64, queues: ["celery"], now: clock.now(), on: redis, into: &inFlight)
protocol ClaimStrategy: AnyObject {
    /// Queue the next claim of up to `room` deliveries from `queues` (kombu's consume
    /// order) on the connection and flush it, adding what it sent to `inFlight`.
    func send(
        room: Int, queues: [String], now: Double, on redis: RedisConnection, into inFlight: inout [ClaimInFlight])
        throws(RedisError)
    /// Read the reply of one part of a claim sent ahead.
    func read(_ part: ClaimInFlight, on redis: RedisConnection, reusing spare: inout SpareBuffers)
        throws(RedisError) -> ClaimReply
    /// Claim again, synchronously, what a claim whose script Redis had lost did not take.
    func retry(_ pending: DeliveryClaim.Pending, on redis: RedisConnection) throws(RedisError) -> [Delivery]
    /// Append what must be written before any acknowledgement (a claim by move's kombu
    /// records), as RESP; the number of replies it gets, or nil when there is nothing.
    /// `stamp`: the lease stamp by the worker's clock; a strategy that stamped its claim in
    /// Redis's time (`LeaseClock`) records with that stamp instead.
    func appendRecords(stamp: String, to wire: inout [UInt8]) -> Int?
    /// Whether claimed deliveries wait to be recorded (`appendRecords`).
    var hasUnrecorded: Bool { get }
    /// The connection is gone with `inFlight` unanswered: forget what it knew of it.
    func connectionLost(inFlight: some Collection<ClaimInFlight>)
    /// A new connection, before any claim: put back what a claim lost with the last
    /// connection took and nobody holds (`held` says who does). Returns how many went back.
    func connected(on redis: RedisConnection, held: (String) -> Bool) throws(RedisError) -> Int
    /// A clean stop: remove what only a lost claim would need.
    func stopped(on redis: RedisConnection)
}
