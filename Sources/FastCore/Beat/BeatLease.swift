import Foundation

/// The leadership role of one scheduler: the leader lease (`BeatScripts.acquire`: SET PX if absent),
/// its renewal (`BeatScripts.renew`), its release with a hand-over to a standby
/// (`BeatScripts.release`), the heartbeat into `celeris:beat:schedulers` and the standby's wait
/// on the hand-over list. Leadership only decides who does the work: the send script is the
/// fence, so a scheduler that still believes it leads cannot send once the lease is another's.
///
///     let lease = BeatLease(id: config.id, leaseMs: 3000)
///     if try lease.acquire(on: redis, now: nowMs) { /* lead */ }
///     _ = try lease.renew(on: redis, now: nowMs)
final class BeatLease {
    let id: String
    let leaseMs: Int64
    private let metrics: BeatMetrics
    /// Whether this scheduler holds the lease, as far as it knows (its last acquire or renew).
    private(set) var isLeader = false
    /// When this scheduler last took the lease (ms, Redis time).
    private(set) var since: Int64?

    init(id: String, leaseMs: Int64, metrics: BeatMetrics = BeatMetrics(enabled: false)) {
        self.id = id
        self.leaseMs = leaseMs
        self.metrics = metrics
    }

    /// Take the lease if nobody holds it; on success record the leadership (`id`, `since`,
    /// `changes` + 1). True when this scheduler leads now.
    func acquire(on redis: RedisConnection, now: Int64) throws(RedisError) -> Bool {
        if isLeader { return true }
        let r = try BeatScripts.acquire.run(
            on: redis, keys: [BeatKeys.leader, BeatKeys.leadership], args: [id, String(leaseMs), String(now)])
        guard r.integer == 1 else { return false }
        isLeader = true
        since = now
        metrics.leader(true)
        metrics.leadershipAcquired()
        return true
    }

    /// Extend the lease; false (and no longer leader) when it is not ours any more.
    func renew(on redis: RedisConnection, now: Int64) throws(RedisError) -> Bool {
        guard isLeader else { return false }
        let r = try BeatScripts.renew.run(on: redis, keys: [BeatKeys.leader], args: [id, String(leaseMs)])
        if r.integer == 1 { return true }
        lost()
        return false
    }

    /// The lease was found to be another's (a renew, or the send script's -1).
    func lost() {
        guard isLeader else { return }
        isLeader = false
        since = nil
        metrics.leader(false)
    }

    /// Give the lease up (if ours) and push our id onto the hand-over list so a waiting
    /// standby takes over at once; then leave the schedulers set. True when it was ours.
    @discardableResult
    func release(on redis: RedisConnection) throws(RedisError) -> Bool {
        var released = false
        if isLeader {
            let r = try BeatScripts.release.run(
                on: redis, keys: [BeatKeys.leader, BeatKeys.handover], args: [id, String(leaseMs)])
            released = r.integer == 1
            lost()
        }
        try redis.command("ZREM", BeatKeys.schedulers, id)
        return released
    }

    /// Record this scheduler as seen at `now`; the leader also prunes schedulers not seen for
    /// three leases.
    func heartbeat(on redis: RedisConnection, now: Int64) throws(RedisError) {
        var commands = [["ZADD", BeatKeys.schedulers, String(now), id]]
        if isLeader {
            commands.append(["ZREMRANGEBYSCORE", BeatKeys.schedulers, "-inf", "(" + String(now - 3 * leaseMs)])
        }
        for reply in try redis.pipeline(commands) {
            if let e = reply.errorMessage { throw .reply(e) }
        }
    }

    /// Wait up to `seconds` in `BLPOP` on the hand-over list; true when a releasing leader's
    /// id was taken (try to acquire now). The connection's read timeout must exceed `seconds`.
    func waitForHandover(on redis: RedisConnection, seconds: Double) throws(RedisError) -> Bool {
        let timeout = String(format: "%.3f", max(0.001, seconds))
        let r = try redis.pipeline([["BLPOP", BeatKeys.handover, timeout]])[0]
        if let e = r.errorMessage { throw .reply(e) }
        return r.elements != nil
    }
}
