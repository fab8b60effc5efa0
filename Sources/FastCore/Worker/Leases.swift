/// This worker's leases on what it holds: every delivery's `unacked_index` score is
/// re-stamped every `interval` seconds (`ZADD … XX`), so only a dead worker's
/// deliveries ever look older than the visibility timeout. Stamped in Redis's time
/// (`LeaseClock`), as the claim script stamps them, whatever this worker's clock says.
///
///     var leases = Leases(interval: 1, clock: LeaseClock(clock: SystemClock()))
///     redisWrites += leases.renewals(now: clock.now(), held: held.keys)
struct Leases {
    let interval: Double
    /// Turns this worker's time into Redis's for the stamps.
    let clock: LeaseClock
    private(set) var nextRenewal = 0.0

    init(interval: Double, clock: LeaseClock) {
        self.interval = interval
        self.clock = clock
    }

    /// A lease's time as kombu's `unacked_index` scores it here: whole seconds, rounded up.
    /// (A time beyond ±1e15 s, or not finite, is clamped: never trapped on.)
    static func stamp(_ now: Double) -> String {
        guard now.isFinite else { return now > 0 ? "1000000000000000" : "-1000000000000000" }
        return String(Int(min(max(now, -1e15), 1e15).rounded(.up)))
    }

    /// The commands renewing every held delivery's lease, when a renewal is due (else none).
    mutating func renewals(now: Double, held: some Collection<String>) -> [[String]] {
        guard now >= nextRenewal else { return [] }
        nextRenewal = now + interval
        let tags = Array(held)
        let stamp = clock.stamp(now)  // Redis's time in whole seconds, as the claim writes them
        var out: [[String]] = []
        for chunk in stride(from: 0, to: tags.count, by: 500) {
            var cmd = ["ZADD", DeliveryClaim.unackedIndexKey, "XX"]
            for tag in tags[chunk..<min(chunk + 500, tags.count)] { cmd += [stamp, tag] }
            out.append(cmd)
        }
        return out
    }
}
