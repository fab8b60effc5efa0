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
    /// new envelope, newest score that may be moved, and optionally "dead" (the target is
    /// the dead-letter list and the new envelope its entry: pushed at its head, as the
    /// worker's other dead letters). Moves atomically, and only if the record is unchanged
    /// and its lease is no newer than ARGV[4]. Returns 1 (moved), 2 (dead-lettered) or 0.
    static let moveScript = RedisScript(
        """
        local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
        if not score or tonumber(score) > tonumber(ARGV[4]) then return 0 end
        if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
        redis.call('ZREM', KEYS[2], ARGV[1])
        redis.call('HDEL', KEYS[1], ARGV[1])
        if ARGV[5] == 'dead' then
          redis.call('LPUSH', KEYS[3], ARGV[3])
          return 2
        end
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

    /// What a restore did: deliveries put back on their queues, and deliveries whose
    /// restores ran out (`RedeliveryLimit`) moved to the dead-letter list.
    public struct Outcome: Sendable, Equatable {
        public var restored = 0
        public var deadLettered = 0
        public init(restored: Int = 0, deadLettered: Int = 0) {
            self.restored = restored
            self.deadLettered = deadLettered
        }
    }

    /// Return these deliveries to their queues now (no lease check, no redelivery
    /// counted: their worker gives them back). Returns how many moved.
    @discardableResult
    public func returnDeliveries(_ tags: [String], on redis: RedisConnection) throws(RedisError) -> Int {
        try move(tags, on: redis, newestScore: 1e300, redeliveries: nil, now: 0).restored
    }

    /// One recovery pass: restore every delivery whose lease is older than
    /// `visibilityTimeout`, if no other worker holds `unacked_mutex`. Returns how many
    /// were restored or dead-lettered.
    @discardableResult
    public func recoverStale(
        on redis: RedisConnection, visibilityTimeout: Double, now: Double, limit: Int = 1000,
        token: String = TaskMessage.newId()
    ) throws(RedisError) -> Int {
        let outcome = try recover(
            on: redis, visibilityTimeout: visibilityTimeout, now: now, limit: limit, token: token, redeliveries: nil)
        return outcome.restored + outcome.deadLettered
    }

    /// `recoverStale`, counting each restore in the message (`RedeliveryLimit`): one
    /// whose restores ran out goes to the dead-letter list instead of its queue. `now`:
    /// the time leases are judged by, Redis's (`LeaseClock`).
    public func recover(
        on redis: RedisConnection, visibilityTimeout: Double, now: Double, limit: Int = 1000,
        token: String = TaskMessage.newId(), redeliveries: RedeliveryLimit?
    ) throws(RedisError) -> Outcome {
        let locked = try redis.command("SET", DeliveryRestore.mutexKey, token, "NX", "PX", "300000")
        guard locked == .status("OK") else { return Outcome() }
        defer {
            _ = try? DeliveryRestore.releaseScript.run(on: redis, keys: [DeliveryRestore.mutexKey], args: [token])
        }
        let ceiling = now - visibilityTimeout
        let stale = try redis.command(
            "ZRANGEBYSCORE", DeliveryClaim.unackedIndexKey, "-inf", String(ceiling), "LIMIT", "0", String(limit))
        let tags = stale.elements?.compactMap(\.text) ?? []
        return try move(tags, on: redis, newestScore: ceiling, redeliveries: redeliveries, now: now)
    }

    private func move(
        _ tags: [String], on redis: RedisConnection, newestScore: Double, redeliveries: RedeliveryLimit?, now: Double
    ) throws(RedisError) -> Outcome {
        guard !tags.isEmpty else { return Outcome() }
        let records = try redis.pipeline(tags.map { ["HGET", DeliveryClaim.unackedKey, $0] })
        let sha = try DeliveryRestore.moveScript.load(on: redis)  // then one pipelined EVALSHA per tag
        var moves: [[String]] = []
        var unrecorded: [String] = []
        for (tag, record) in zip(tags, records) {
            guard let raw = record.bytes else {
                unrecorded.append(tag)
                continue
            }
            let keys = [DeliveryClaim.unackedKey, DeliveryClaim.unackedIndexKey]
            let restored = DeliveryRestore.restored(record: raw, counting: redeliveries != nil)
            var args = [tag, String(decoding: raw, as: UTF8.self), restored.envelope, String(newestScore)]
            if let redeliveries, let claimed = restored.claimed, redeliveries.exhausted(restored.count) {
                args[2] = redeliveries.entry(
                    tag: tag, queue: QueueKeys.queueName(ofListKey: restored.list), message: claimed, now: now)
                args.append("dead")
                moves.append(
                    DeliveryRestore.moveScript.command(sha: sha, keys: keys + [redeliveries.deadLetterKey], args: args))
            } else {
                moves.append(DeliveryRestore.moveScript.command(sha: sha, keys: keys + [restored.list], args: args))
            }
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
        var outcome = Outcome()
        for reply in try redis.pipeline(moves + drops).prefix(moves.count) {
            if reply.integer == 1 { outcome.restored += 1 }
            if reply.integer == 2 { outcome.deadLettered += 1 }
        }
        return outcome
    }

    /// From an `unacked` record `[envelope, exchange, routing_key]`: the list
    /// to push to and the envelope marked redelivered. A record that is not
    /// that shape goes back verbatim to the list its routing key names.
    static func restoredMessage(record: [UInt8]) -> (list: String, envelope: String) {
        let restored = restored(record: record, counting: false)
        return (restored.list, restored.envelope)
    }

    /// `restoredMessage`, with the envelope's restore count one higher when `counting`
    /// (`RedeliveryLimit`); `count`: the restores before this one, and `claimed`: the
    /// envelope as it was claimed (nil for a record that is not kombu's shape: such a
    /// message carries no count and is never dead-lettered here).
    static func restored(record: [UInt8], counting: Bool) -> (
        list: String, envelope: String, count: Int, claimed: String?
    ) {
        guard let parsed = try? JSONParser.parse(record), let parts = parsed.arrayValue, parts.count == 3 else {
            return ("celery", String(decoding: record, as: UTF8.self), 0, nil)
        }
        let queue = parts[2].stringValue ?? "celery"
        guard case .object = parts[0] else { return (queue, parts[0].stringValue ?? parts[0].serialized(), 0, nil) }
        let envelope = parts[0]
        let priority = envelope["properties"]?["priority"]?.intValue ?? 0
        return (
            QueueKeys.listKey(queue: queue, priority: Int(clamping: priority)),
            RedeliveryLimit.redelivered(envelope, counting: counting).serialized(),
            RedeliveryLimit.count(of: envelope),
            envelopeText(record: record).map { String(decoding: $0, as: UTF8.self) } ?? envelope.serialized()
        )
    }

    /// The envelope's text in a record `[{…}, …]` exactly as it was claimed (the object's
    /// bytes, found by its matching brace outside strings); nil when the record does not
    /// start that way.
    static func envelopeText(record: [UInt8]) -> ArraySlice<UInt8>? {
        func skipSpace(_ i: Int) -> Int {
            var i = i
            while i < record.count, record[i] == 0x20 || record[i] == 0x09 || record[i] == 0x0A || record[i] == 0x0D {
                i += 1
            }
            return i
        }
        var i = skipSpace(0)
        guard i < record.count, record[i] == UInt8(ascii: "[") else { return nil }
        i = skipSpace(i + 1)
        guard i < record.count, record[i] == UInt8(ascii: "{") else { return nil }
        let start = i
        var depth = 0
        var inString = false
        while i < record.count {
            let b = record[i]
            if inString {
                if b == UInt8(ascii: "\\") {
                    i += 1
                } else if b == UInt8(ascii: "\"") {
                    inString = false
                }
            } else if b == UInt8(ascii: "\"") {
                inString = true
            } else if b == UInt8(ascii: "{") || b == UInt8(ascii: "[") {
                depth += 1
            } else if b == UInt8(ascii: "}") || b == UInt8(ascii: "]") {
                depth -= 1
                if depth == 0 { return record[start...i] }
            }
            i += 1
        }
        return nil
    }
}
