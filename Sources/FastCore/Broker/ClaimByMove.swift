import CEventShim

/// Claiming by move (`--claim move`): a batch of messages is copied from the tail of
/// its queue list into this worker's claiming list and trimmed off the queue in one
/// transaction (`SORT … BY nosort LIMIT 0 n DESC STORE`, `LTRIM`), with no script, so
/// Redis never copies a message into Lua (where Redis 7 hashes every byte of every
/// string). kombu's `unacked` records for what a claim took are written by the worker,
/// in its next pipelined write, in the transaction that also empties the claiming
/// list. So a message is always in its queue, in a claiming list, or in `unacked`.
///
/// A claiming list is registered in `celeris.claiming` (scored by its claim's time)
/// while it holds anything. A worker moves its own lists back to their queues when it
/// connects (a restart, a lost connection); any Celeris worker moves back a list whose
/// registration is older than the visibility timeout (its worker died between a claim
/// and its records). Python workers do not know these lists: a fleet that mixes them
/// keeps the script claim (`DeliveryClaim`), the default.
///
/// A claim replaces its claiming list (`STORE`): the caller sends the records of the
/// previous claim from a list (which delete it) before the next claim into it.
///
///     let byMove = ClaimByMove(hostname: "w1@host")
///     let plan = ClaimByMove.plan(keys: ["celery"], lengths: ["celery": 500], room: 128)
///     try byMove.append(plan, stamp: "1795246218", on: redis)   // then read with `deliveries`
public struct ClaimByMove: Sendable {
    /// The registry of claiming lists in use: member = list key, score = claim time.
    public static let registryKey = "celeris.claiming"
    public let hostname: String
    /// Claiming list keys by queue list, made once each (a claim names each three times).
    private let claimingKeys = LockedBox<[String: String]>([:])

    public init(hostname: String) { self.hostname = hostname }

    /// This worker's claiming list for the queue list `listKey` (the host name's length
    /// first, so the queue list can be read back whatever either contains).
    public func claimingKey(_ listKey: String) -> String {
        if let key = claimingKeys.get()[listKey] { return key }
        let key = "\(Self.registryKey):\(hostname.utf8.count):\(hostname):\(listKey)"
        claimingKeys.modify { $0[listKey] = key }
        return key
    }

    /// The queue list a claiming list's messages came from; nil for a key of another shape
    /// (anyone can write the registry: a length that is negative, or runs past the key, is
    /// not this shape).
    public static func sourceKey(ofClaimingKey key: String) -> String? {
        sourceKey(ofClaimingKey: Array(key.utf8))
    }

    /// `sourceKey` of a registry member as Redis holds it (any bytes).
    static func sourceKey(ofClaimingKey bytes: [UInt8]) -> String? {
        let prefix = Array((registryKey + ":").utf8)
        guard bytes.starts(with: prefix), let colon = bytes[prefix.count...].firstIndex(of: UInt8(ascii: ":")),
            colon - prefix.count <= 19,  // digits of a length, not a number to overflow on
            let length = Int(String(decoding: bytes[prefix.count..<colon], as: UTF8.self)),
            length >= 0, length <= bytes.count - colon - 2, bytes[colon + 1 + length] == UInt8(ascii: ":")
        else { return nil }
        return String(decoding: bytes[(colon + 2 + length)...], as: UTF8.self)
    }

    /// How many to move from each list: in consume order, what the last known lengths
    /// show, up to `room` in all. Empty when nothing is known to wait.
    public static func plan(keys: [String], lengths: [String: Int], room: Int) -> [(key: String, count: Int)] {
        var left = room
        var out: [(key: String, count: Int)] = []
        for key in keys where left > 0 {
            let n = min(left, lengths[key] ?? 0)
            if n > 0 { out.append((key, n)) }
            left -= n
        }
        return out
    }

    /// Queue each claiming list's registration (`stamp`: whole seconds), then one
    /// transaction that moves each list's batch (oldest first) into its claiming list,
    /// then a read of each claiming list. Registered first, so a worker that dies
    /// part-way through sending leaves no unregistered list behind. `deliveries` reads
    /// the replies.
    public func append(_ plan: [(key: String, count: Int)], stamp: String, on redis: RedisConnection)
        throws(RedisError)
    {
        var out: [UInt8] = []
        append(plan, stamp: stamp, to: &out)
        try redis.append(resp: out)
    }

    /// `append`'s commands as RESP, added to `out` (a caller's buffer, kept for its storage).
    public func append(_ plan: [(key: String, count: Int)], stamp: String, to out: inout [UInt8]) {
        for (key, _) in plan { RESP.append(command: "ZADD", Self.registryKey, stamp, claimingKey(key), to: &out) }
        RESP.append(command: "MULTI", to: &out)
        for (key, count) in plan {
            RESP.append(
                command: "SORT", key, "BY", "nosort", "LIMIT", "0", String(count), "DESC", "STORE", claimingKey(key),
                to: &out)
            RESP.append(command: "LTRIM", key, "0", String(-count - 1), to: &out)
        }
        RESP.append(command: "EXEC", to: &out)
        for (key, _) in plan { RESP.append(command: "LRANGE", claimingKey(key), "0", "-1", to: &out) }
    }

    /// The replies of `append`: the messages each claiming list received, oldest first.
    public func deliveries(_ plan: [(key: String, count: Int)], on redis: RedisConnection) throws(RedisError)
        -> [Taken]
    {
        var spare = SpareBuffers()
        return try deliveries(plan, on: redis, reusing: &spare)
    }

    /// `deliveries`, each message and tag copied into `spare`'s buffers while it has any.
    public func deliveries(
        _ plan: [(key: String, count: Int)], on redis: RedisConnection, reusing spare: inout SpareBuffers
    ) throws(RedisError) -> [Taken] {
        var out: [Taken] = []
        try deliveries(plan, on: redis, reusing: &spare, into: &out)
        return out
    }

    /// `deliveries`, appended to `out` (nothing is appended when it throws).
    public func deliveries(
        _ plan: [(key: String, count: Int)], on redis: RedisConnection, reusing spare: inout SpareBuffers,
        into out: inout [Taken]
    ) throws(RedisError) {
        let outcome = try read(plan, on: redis, reusing: &spare, into: &out)
        if let failure = outcome.errors.first { throw .reply(WriteFailure(errors: outcome.errors)?.message ?? failure) }
    }

    /// What a claim by move's replies said: every error reply, in order, and whether its
    /// transaction ran (messages may have moved, even if an error came after).
    struct MoveOutcome {
        var errors: [String] = []
        var executed = false
    }

    /// `deliveries`' reading: appends to `out` only when there was no error reply.
    func read(
        _ plan: [(key: String, count: Int)], on redis: RedisConnection, reusing spare: inout SpareBuffers,
        into out: inout [Taken]
    ) throws(RedisError) -> MoveOutcome {
        let from = out.count
        var outcome = MoveOutcome()
        do throws(RedisError) {
            for _ in 0..<(plan.count * 3 + 1) {  // registrations, MULTI, QUEUED…
                outcome.errors += try redis.readErrors()
            }
            try redis.read { (r) throws(RedisError) in  // EXEC
                if r.isError { outcome.errors.append(r.text) } else { outcome.executed = true }
            }
            for (key, _) in plan {
                try redis.read { (r) throws(RedisError) in
                    if r.isError { outcome.errors.append(r.text) }
                    for i in 0..<r.count {
                        out.append(Taken(listKey: key, raw: spare.envelope(r[i].bytes), reusing: &spare))
                    }
                }
            }
        } catch {
            out.removeSubrange(from...)
            throw error
        }
        if !outcome.errors.isEmpty { out.removeSubrange(from...) }
        return outcome
    }

    /// What a claim by move took, read for its kombu record as the claim script reads it:
    /// the delivery tag, exchange and routing key found in the envelope's text
    /// (`properties` come last: the tail is searched first), not decoded.
    public struct Taken: Sendable {
        public let tag: String
        public let listKey: String
        public let raw: [UInt8]
        /// Where the exchange and routing key are in `raw`; nil: "" and the queue's name.
        let exchange: Range<Int>?
        let routingKey: Range<Int>?
        /// No tag in the text: recorded as a JSON string under a made-up tag, like the script does.
        let undecodable: Bool

        /// Find the fields in `raw`, moved from the list `listKey`.
        public init(listKey: String, raw: [UInt8]) {
            var spare = SpareBuffers()
            self.init(listKey: listKey, raw: raw, reusing: &spare)
        }

        /// `init(listKey:raw:)`, the tag written over one of `spare`'s while it has any.
        init(listKey: String, raw: [UInt8], reusing spare: inout SpareBuffers) {
            self.listKey = listKey
            self.raw = raw
            let tail = max(0, raw.count - DeliveryClaim.fieldSearchTail)
            var from = tail
            var tag = Self.field(raw, Self.tagKey, from: tail, empty: false)
            if tag == nil && tail > 0 {
                from = 0
                tag = Self.field(raw, Self.tagKey, from: 0, empty: false)
            }
            if let tag {
                self.tag = raw.withUnsafeBytes { spare.tag(UnsafeRawBufferPointer(rebasing: $0[tag])) }
                exchange = Self.field(raw, Self.exchangeKey, from: from, empty: true)
                routingKey = Self.field(raw, Self.routingKeyKey, from: from, empty: true)
                undecodable = false
            } else {
                self.tag = "celeris-undecodable-" + TaskMessage.newId()
                exchange = nil
                routingKey = nil
                undecodable = true
            }
        }

        /// A name searched for, quoted, and which of its bytes to look for first: one that
        /// is rare in an envelope's text (the search stops at each of its occurrences).
        struct Key: Sendable {
            let bytes: [UInt8]
            let anchor: Int
            init(_ name: String, anchor: Character) {
                bytes = Array("\"\(name)\"".utf8)
                self.anchor = bytes.firstIndex(of: anchor.asciiValue!)!
            }
        }
        static let tagKey = Key("delivery_tag", anchor: "y")
        static let exchangeKey = Key("exchange", anchor: "x")
        static let routingKeyKey = Key("routing_key", anchor: "k")

        /// The string value of the first `key` (a quoted name) followed by `: "…"` at or
        /// after `from` (any spacing around the colon; the value ends at the next quote,
        /// as the script reads it).
        static func field(_ raw: [UInt8], _ key: Key, from: Int, empty: Bool) -> Range<Int>? {
            /// The first index at or after `j` that is not JSON whitespace.
            func skipSpace(_ j: Int) -> Int {
                var j = j
                while j < raw.count && (raw[j] == 0x20 || raw[j] == 0x09 || raw[j] == 0x0A || raw[j] == 0x0D) { j += 1 }
                return j
            }
            var i = from
            while let at = find(key, in: raw, from: i) {
                var j = skipSpace(at + key.bytes.count)
                guard j < raw.count, raw[j] == UInt8(ascii: ":") else {
                    i = at + 1
                    continue
                }
                j = skipSpace(j + 1)
                guard j < raw.count, raw[j] == UInt8(ascii: "\"") else {
                    i = at + 1
                    continue
                }
                guard let end = raw[(j + 1)...].firstIndex(of: UInt8(ascii: "\"")), empty || end > j + 1 else {
                    i = at + 1
                    continue
                }
                return (j + 1)..<end
            }
            return nil
        }

        /// Where `key` first occurs in `raw` at or after `from`.
        static func find(_ key: Key, in raw: [UInt8], from: Int) -> Int? {
            guard from < raw.count else { return nil }
            let at = raw.withUnsafeBufferPointer { hay in
                key.bytes.withUnsafeBufferPointer { n in
                    ce_find(hay.baseAddress! + from, hay.count - from, n.baseAddress, n.count, key.anchor)
                }
            }
            return at < 0 ? nil : from + at
        }

        /// kombu's record `[<envelope>, "<exchange>", "<routing_key>"]` as one RESP bulk string.
        func appendRecord(to out: inout [UInt8]) {
            if undecodable {  // `[text, "", queue]` in the script's compact form (cjson's)
                var record: [UInt8] = [UInt8(ascii: "[")]
                JSON.writeString(String(decoding: raw, as: UTF8.self), to: &record)
                record += #","","#.utf8
                JSON.writeString(QueueKeys.queueName(ofListKey: listKey), to: &record)
                record.append(UInt8(ascii: "]"))
                RESP.appendBulk(record, to: &out)
                return
            }
            let queue = routingKey == nil ? Array(QueueKeys.queueName(ofListKey: listKey).utf8) : []
            let ex = exchange.map { raw[$0] } ?? []
            let rk = routingKey.map { raw[$0] } ?? queue[...]
            out.append(UInt8(ascii: "$"))
            RESP.decimal(raw.count + ex.count + rk.count + 10, to: &out)
            out.append(UInt8(ascii: "["))
            out += raw
            out += #", ""#.utf8
            out += ex
            out += #"", ""#.utf8
            out += rk
            out += #""]"#.utf8
            out += "\r\n".utf8
        }
    }

    /// The transaction that records what claims took in kombu's bookkeeping (HSET
    /// `unacked`, ZADD `unacked_index` at `stamp`, kept a skiplist by
    /// `DeliveryClaim.indexWidener`) and empties and unregisters the
    /// claiming lists they were moved to, as RESP. Returns how many replies it gets.
    public func appendRecords(
        _ taken: [Taken], claiming: some Collection<String>, stamp: String, to out: inout [UInt8]
    ) -> Int {
        out.reserveCapacity(out.count + taken.reduce(256) { $0 + $1.raw.count + 160 })
        RESP.append(["MULTI"], to: &out)
        var commands = 2
        if !taken.isEmpty {
            RESP.appendCount(2 + 2 * taken.count, to: &out)
            RESP.appendBulk("HSET".utf8, to: &out)
            RESP.appendBulk(DeliveryClaim.unackedKey.utf8, to: &out)
            for t in taken {
                RESP.appendBulk(t.tag.utf8, to: &out)
                t.appendRecord(to: &out)
            }
            RESP.appendCount(4 + 2 * taken.count, to: &out)
            RESP.appendBulk("ZADD".utf8, to: &out)
            RESP.appendBulk(DeliveryClaim.unackedIndexKey.utf8, to: &out)
            RESP.appendBulk(stamp.utf8, to: &out)
            RESP.appendBulk(DeliveryClaim.indexWidener.utf8, to: &out)
            for t in taken {
                RESP.appendBulk(stamp.utf8, to: &out)
                RESP.appendBulk(t.tag.utf8, to: &out)
            }
            RESP.append(["ZREM", DeliveryClaim.unackedIndexKey, DeliveryClaim.indexWidener], to: &out)
            commands += 3
        }
        RESP.appendCount(1 + claiming.count, to: &out)
        RESP.appendBulk("DEL", to: &out)
        RESP.appendBulks(claiming, to: &out)
        RESP.appendCount(2 + claiming.count, to: &out)
        RESP.appendBulk("ZREM", to: &out)
        RESP.appendBulk(Self.registryKey.utf8, to: &out)
        RESP.appendBulks(claiming, to: &out)
        RESP.append(["EXEC"], to: &out)
        return commands + 2
    }
}
