import CEventShim

/// Restores of claiming lists: a worker's own at connect, a dead peer's by recovery,
/// counted against the redelivery limit (`RedeliveryLimit`).
extension ClaimByMove {
    /// KEYS: registry, claiming list, its queue list. ARGV: the newest registration that
    /// may be moved. Moves the whole list (oldest claim first) back to the consuming end
    /// of its queue, the oldest to be consumed first, and unregisters it; returns how
    /// many moved.
    static let restoreScript = RedisScript(
        """
        local score = redis.call('ZSCORE', KEYS[1], KEYS[2])
        if score and tonumber(score) > tonumber(ARGV[1]) then return 0 end
        local n = 0
        while redis.call('LMOVE', KEYS[2], KEYS[3], 'RIGHT', 'RIGHT') do n = n + 1 end
        redis.call('ZREM', KEYS[1], KEYS[2])
        return n
        """)

    /// KEYS: registry, claiming list, its queue list, the dead-letter list. ARGV: the
    /// newest registration that may be moved, how many messages the list held when read,
    /// then for each of them, in list order, its text to push and "q" (back to the
    /// consuming end of its queue, in the order `restoreScript` keeps) or "d" (to the head
    /// of the dead-letter list: its restores ran out). Empties and unregisters the list;
    /// returns {restored, dead-lettered}, or -1 when the list changed since it was read.
    static let restoreCountedScript = RedisScript(
        """
        local score = redis.call('ZSCORE', KEYS[1], KEYS[2])
        if score and tonumber(score) > tonumber(ARGV[1]) then return {0, 0} end
        local n = tonumber(ARGV[2])
        if redis.call('LLEN', KEYS[2]) ~= n then return -1 end
        local moved, dead = 0, 0
        for i = n, 1, -1 do
          if ARGV[2 + 2 * i] == 'd' then
            redis.call('LPUSH', KEYS[4], ARGV[1 + 2 * i])
            dead = dead + 1
          else
            redis.call('RPUSH', KEYS[3], ARGV[1 + 2 * i])
            moved = moved + 1
          end
        end
        redis.call('DEL', KEYS[2])
        redis.call('ZREM', KEYS[1], KEYS[2])
        return {moved, dead}
        """)

    /// Move this worker's claiming lists for `listKeys` back to their queues (at connect:
    /// nothing in them is being run here). Returns how many messages moved.
    @discardableResult
    public func restoreOwn(listKeys: [String], on redis: RedisConnection) throws(RedisError) -> Int {
        let outcome = try restoreOwn(listKeys: listKeys, on: redis, redeliveries: nil, now: 0)
        return outcome.restored + outcome.deadLettered
    }

    /// `restoreOwn`, counting each message's restore (`RedeliveryLimit`: this worker
    /// stopped, or lost its connection, without recording them); one whose restores ran
    /// out goes to the dead-letter list. `now`: the dead-letter entry's date.
    public func restoreOwn(listKeys: [String], on redis: RedisConnection, redeliveries: RedeliveryLimit?, now: Double)
        throws(RedisError) -> DeliveryRestore.Outcome
    {
        var outcome = DeliveryRestore.Outcome()
        for key in listKeys {
            let one = try Self.restore(
                claiming: claimingKey(key), to: key, ceiling: 1e300, redeliveries: redeliveries, now: now, on: redis)
            outcome.restored += one.restored
            outcome.deadLettered += one.deadLettered
        }
        return outcome
    }

    /// Move back every claiming list registered at or before `ceiling` (its worker died
    /// between a claim and its records). Returns how many messages moved.
    @discardableResult
    public static func restoreStale(ceiling: Double, on redis: RedisConnection, limit: Int = 100) throws(RedisError)
        -> Int
    {
        let outcome = try restoreStale(ceiling: ceiling, on: redis, limit: limit, redeliveries: nil, now: 0)
        return outcome.restored + outcome.deadLettered
    }

    /// `restoreStale`, counting each message's restore (`RedeliveryLimit`); one whose
    /// restores ran out goes to the dead-letter list. `ceiling` is in Redis's time
    /// (`LeaseClock`); `now`: the dead-letter entry's date.
    public static func restoreStale(
        ceiling: Double, on redis: RedisConnection, limit: Int = 100, redeliveries: RedeliveryLimit?, now: Double
    ) throws(RedisError) -> DeliveryRestore.Outcome {
        let stale = try redis.command(
            "ZRANGEBYSCORE", registryKey, "-inf", String(ceiling), "LIMIT", "0", String(limit))
        var outcome = DeliveryRestore.Outcome()
        for member in stale.elements?.compactMap(\.bytes) ?? [] {
            // Not a claiming list's name (anyone can write the registry): dropped from it, as
            // Redis holds it, so it neither traps nor fills every pass's first `limit`.
            guard let source = sourceKey(ofClaimingKey: member),
                let claiming = String(validating: member, as: UTF8.self)
            else {
                _ = try command([Array("ZREM".utf8), Array(registryKey.utf8), member], on: redis)
                continue
            }
            let one = try restore(
                claiming: claiming, to: source, ceiling: ceiling, redeliveries: redeliveries, now: now, on: redis)
            outcome.restored += one.restored
            outcome.deadLettered += one.deadLettered
        }
        return outcome
    }

    /// Move one claiming list back to `source` if registered at or before `ceiling`:
    /// verbatim without a limit; with one, each message marked redelivered with its
    /// restore count one higher, or dead-lettered when its restores ran out.
    private static func restore(
        claiming: String, to source: String, ceiling: Double, redeliveries: RedeliveryLimit?, now: Double,
        on redis: RedisConnection
    ) throws(RedisError) -> DeliveryRestore.Outcome {
        guard let redeliveries else {
            let moved = try restoreScript.run(
                on: redis, keys: [registryKey, claiming, source], args: [String(ceiling)])
            return DeliveryRestore.Outcome(restored: Int(moved.integer ?? 0))
        }
        // The list changes only if its worker claims into it again (it is alive after all):
        // read it again then, a few times, else leave it to the next pass.
        let back = Array("q".utf8)
        let dead = Array("d".utf8)
        for _ in 0..<3 {
            let items = try redis.command("LRANGE", claiming, "0", "-1").elements?.compactMap(\.bytes) ?? []
            var args = [Array(String(ceiling).utf8), Array(String(items.count).utf8)]
            args.reserveCapacity(2 + 2 * items.count)
            for raw in items {
                guard let envelope = try? JSONParser.parse(raw), case .object = envelope else {
                    args += [raw, back]  // carries no count: back byte for byte as it was
                    continue
                }
                if redeliveries.exhausted(RedeliveryLimit.count(of: envelope)) {
                    let tag = envelope["properties"]?["delivery_tag"]?.stringValue ?? ""
                    let entry = redeliveries.entry(
                        tag: tag, queue: QueueKeys.queueName(ofListKey: source),
                        message: String(decoding: raw, as: UTF8.self), now: now)
                    args += [Array(entry.utf8), dead]
                } else {
                    args += [Array(RedeliveryLimit.redelivered(envelope, counting: true).serialized().utf8), back]
                }
            }
            let keys = [registryKey, claiming, source, redeliveries.deadLetterKey]
            let sha = try restoreCountedScript.load(on: redis)
            let reply = try command(
                [Array("EVALSHA".utf8), Array(sha.utf8), Array(String(keys.count).utf8)] + keys.map { Array($0.utf8) }
                    + args, on: redis)
            guard let parts = reply.elements, parts.count == 2 else { continue }
            return DeliveryRestore.Outcome(
                restored: Int(parts[0].integer ?? 0), deadLettered: Int(parts[1].integer ?? 0))
        }
        return DeliveryRestore.Outcome()
    }

    /// One command whose arguments are bytes (a message or registry member as Redis holds
    /// it, not necessarily UTF-8); an error reply throws.
    private static func command(_ args: [[UInt8]], on redis: RedisConnection) throws(RedisError) -> RedisValue {
        var wire: [UInt8] = []
        RESP.appendCount(args.count, to: &wire)
        for a in args { RESP.appendBulk(a, to: &wire) }
        try redis.append(resp: wire)
        let reply = try redis.read()
        if let e = reply.errorMessage { throw .reply(e) }
        return reply
    }
}
