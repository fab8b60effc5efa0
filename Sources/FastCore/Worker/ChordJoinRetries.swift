/// Chord parts whose join failed (Redis refused or lost the body's enqueue, or the
/// count): their deliveries stay held, leased and unacknowledged, and each join is tried
/// again, with a backoff that doubles up to `maxBackoff`, until it succeeds. Only a
/// failure that is the server's state (`WriteFailure`) or a lost connection is retried: any
/// other error fails the chord (`ChordJoin.fail`).
///
///     var retries = ChordJoinRetries()
///     retries.failed(part, tag: tag, now: now)
///     if retries.isDue(now) { for (part, tag) in retries.takeAll() { … } }
struct ChordJoinRetries {
    private var parts: [(part: ChordPart, tag: String?)] = []
    /// The next try's time (while any waits).
    private(set) var retryAt = Double.infinity
    private var backoff = 0.0
    static let minBackoff = 0.05
    static let maxBackoff = 2.0

    var isEmpty: Bool { parts.isEmpty }
    /// How many joins wait to be tried again.
    var count: Int { parts.count }

    /// A join failed at `now`: keep it for a retry after the backoff.
    mutating func failed(_ part: ChordPart, tag: String?, now: Double) {
        parts.append((part, tag))
        backoff = min(max(Self.minBackoff, backoff * 2), Self.maxBackoff)
        retryAt = now + backoff
    }

    func isDue(_ now: Double) -> Bool { !parts.isEmpty && now >= retryAt }

    /// After a round of retries: none failed again, the next failure waits the shortest time.
    mutating func settled() { if parts.isEmpty { backoff = 0 } }

    /// The joins to try now (those that fail again come back through `failed`).
    mutating func takeAll() -> [(part: ChordPart, tag: String?)] {
        let out = parts
        parts.removeAll()
        retryAt = .infinity
        return out
    }
}
