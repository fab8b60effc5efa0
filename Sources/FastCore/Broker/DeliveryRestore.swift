/// Putting claimed messages back on their queues, in kombu's format: the
/// envelope gains `"redelivered": true` (headers and delivery_info) and is
/// RPUSHed to the consuming end of its priority list.
///
/// Two callers: a worker returning what it claimed but did not start (warm or
/// cold shutdown), and the visibility-timeout recovery that any live worker
/// runs for deliveries whose lease (their `unacked_index` score) went stale,
/// under kombu's `unacked_mutex` so Python workers and Celeris take turns.
///
///     let restore = DeliveryRestore()
///     try restore.recoverStale(on: redis, visibilityTimeout: 3600, now: clock.now())
public struct DeliveryRestore: Sendable {
    /// kombu's lock for restore passes.
    public static let mutexKey = "unacked_mutex"

    /// KEYS: unacked, unacked_index, target list. ARGV: tag, expected record,
    /// new envelope, newest score that may be moved. Moves atomically, and
    /// only if the record is unchanged and its lease is no newer than ARGV[4].
    static let moveScript = RedisScript(
        """
        local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
        if not score or tonumber(score) > tonumber(ARGV[4]) then return 0 end
        if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
        redis.call('ZREM', KEYS[2], ARGV[1])
        redis.call('HDEL', KEYS[1], ARGV[1])
        redis.call('RPUSH', KEYS[3], ARGV[3])
        return 1
        """)

    /// KEYS: unacked, unacked_index. ARGV: tag, newest score that may be dropped. Drops
    /// the tag's index entry if it has no record in `unacked` (someone deleted the hash,
    /// or a write was cut between the two) and its lease is no newer than ARGV[2], as
    /// kombu's restore does: left there, such entries would fill every recovery pass's
    /// first `limit` tags and keep the stale deliveries behind them from ever coming back.
    static let dropUnrecordedScript = RedisScript(
        """
        local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
        if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
        if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
        return redis.call('ZREM', KEYS[2], ARGV[1])
        """)

    /// KEYS: mutex. ARGV: token. kombu's compare-and-delete release.
    static let releaseScript = RedisScript(
        """
        if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
        return 0
        """)

    public init() {}

    /// Return these deliveries to their queues now (no lease check). Returns how many moved.
    @discardableResult
    public func returnDeliveries(_ tags: [String], on redis: RedisConnection) throws(RedisError) -> Int {
        try move(tags, on: redis, newestScore: 1e300)
    }

    /// One recovery pass: restore every delivery whose lease is older than
    /// `visibilityTimeout`, if no other worker holds `unacked_mutex`.
    @discardableResult
    public func recoverStale(
        on redis: RedisConnection, visibilityTimeout: Double, now: Double, limit: Int = 1000,
        token: String = TaskMessage.newId()
    ) throws(RedisError) -> Int {
        let locked = try redis.command("SET", DeliveryRestore.mutexKey, token, "NX", "PX", "300000")
        guard locked == .status("OK") else { return 0 }
        defer {
            _ = try? DeliveryRestore.releaseScript.run(on: redis, keys: [DeliveryRestore.mutexKey], args: [token])
        }
        let ceiling = now - visibilityTimeout
        let stale = try redis.command(
            "ZRANGEBYSCORE", DeliveryClaim.unackedIndexKey, "-inf", String(ceiling), "LIMIT", "0", String(limit))
        let tags = stale.elements?.compactMap(\.text) ?? []
        return tags.isEmpty ? 0 : try move(tags, on: redis, newestScore: ceiling)
    }

    private func move(_ tags: [String], on redis: RedisConnection, newestScore: Double) throws(RedisError) -> Int {
        guard !tags.isEmpty else { return 0 }
        let records = try redis.pipeline(tags.map { ["HGET", DeliveryClaim.unackedKey, $0] })
        let sha = try DeliveryRestore.moveScript.load(on: redis)  // then one pipelined EVALSHA per tag
        var moves: [[String]] = []
        var unrecorded: [String] = []
        for (tag, record) in zip(tags, records) {
            guard let raw = record.bytes else {
                unrecorded.append(tag)
                continue
            }
            let (target, envelope) = DeliveryRestore.restoredMessage(record: raw)
            moves.append(
                DeliveryRestore.moveScript.command(
                    sha: sha, keys: [DeliveryClaim.unackedKey, DeliveryClaim.unackedIndexKey, target],
                    args: [tag, String(decoding: raw, as: UTF8.self), envelope, String(newestScore)]))
        }
        var drops: [[String]] = []
        if !unrecorded.isEmpty {
            let drop = try DeliveryRestore.dropUnrecordedScript.load(on: redis)
            let keys = [DeliveryClaim.unackedKey, DeliveryClaim.unackedIndexKey]
            drops = unrecorded.map {
                DeliveryRestore.dropUnrecordedScript.command(sha: drop, keys: keys, args: [$0, String(newestScore)])
            }
        }
        // Only the moves count: the drops' replies come after theirs.
        return try redis.pipeline(moves + drops).prefix(moves.count).reduce(0) { $0 + Int($1.integer ?? 0) }
    }

    /// From an `unacked` record `[envelope, exchange, routing_key]`: the list
    /// to push to and the envelope marked redelivered. A record that is not
    /// that shape goes back verbatim to the list its routing key names.
    static func restoredMessage(record: [UInt8]) -> (list: String, envelope: String) {
        guard let parsed = try? JSONParser.parse(record), let parts = parsed.arrayValue, parts.count == 3 else {
            return ("celery", String(decoding: record, as: UTF8.self))
        }
        let queue = parts[2].stringValue ?? "celery"
        guard case .object = parts[0] else { return (queue, parts[0].stringValue ?? parts[0].serialized()) }
        var envelope = parts[0]
        if let headers = envelope["headers"], case .object = headers {
            envelope = envelope.setting("headers", headers.setting("redelivered", true))
        }
        var priority = 0
        if let properties = envelope["properties"], case .object = properties {
            priority = Int(properties["priority"]?.intValue ?? 0)
            if let info = properties["delivery_info"], case .object = info {
                envelope = envelope.setting(
                    "properties", properties.setting("delivery_info", info.setting("redelivered", true)))
            }
        }
        return (QueueKeys.listKey(queue: queue, priority: priority), envelope.serialized())
    }
}
