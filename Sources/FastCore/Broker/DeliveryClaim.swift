/// Claiming messages from queue lists into kombu's `unacked` bookkeeping in
/// one atomic step (a Lua script), so no crash can lose a popped message:
/// the message is either still in its list or recorded in `unacked` /
/// `unacked_index`, in the very format kombu's own QoS writes and restores
/// (`[<envelope>, <exchange>, <routing_key>]`, scored by claim time).
///
///     let claim = DeliveryClaim()
///     let deliveries = try claim.claim(on: redis, queues: ["celery"], max: 8)
public struct DeliveryClaim: Sendable {
    /// kombu's unacked hash and its index zset.
    public static let unackedKey = "unacked"
    public static let unackedIndexKey = "unacked_index"
    /// A member longer than Redis' `zset-max-listpack-value` (64 bytes by default), added
    /// first with each batch's `unacked_index` entries and removed in the same go. Redis
    /// then keeps the index as a skiplist (it does not convert back while the key
    /// lives), where an insert at the end and a removal by tag are O(log n). As a
    /// listpack (up to 128 entries) each is a scan of the whole index: about half of
    /// Redis' instructions per task at a 128-delivery window. Clients see the same members.
    public static let indexWidener =
        "celeris: a member longer than zset-max-listpack-value keeps unacked_index a skiplist; never left in it"

    /// How many bytes at an envelope's end are searched first for its delivery tag,
    /// exchange and routing key (kombu writes `properties` last), by the claim script
    /// and by a claim by move's records alike; the whole envelope only when not found there.
    public static let fieldSearchTail = 512

    /// The default bound on the bytes of one claim's messages (`claimBytes`): 64 MiB.
    public static let defaultClaimBytes = 64 << 20

    /// KEYS: unacked, unacked_index, then lists in consume order, then (with a serial)
    /// the receipt key. ARGV: max, the claim's serial ("" or absent: no receipt), the
    /// bound on the claim's bytes (absent: none): once the messages taken reach it, the
    /// claim stops (it always takes one) and what it popped beyond goes back where it
    /// was, in order. Returns a flat array: tag, list key, message, tag, list key, …
    /// A claim that took anything and has a serial also writes its receipt: the serial,
    /// then each tag, a line each (`receipt(of:on:)`).
    public static let script = RedisScript(
        """
        local max = tonumber(ARGV[1])
        local serial = ARGV[2] or ''
        local maxBytes = tonumber(ARGV[3] or '')
        local bytes, full = 0, false
        local lists = serial ~= '' and #KEYS - 1 or #KEYS
        local t = redis.call('TIME')
        -- Numbers go to Redis as strings made with '%d': Lua would format each with "%.14g"
        -- (printf's floating-point path, about 2,000 instructions a number).
        local fmt = string.format
        -- Whole seconds, rounded up (a lease never looks older than it is): Redis keeps
        -- a small zset as a listpack, where a fractional score is re-parsed with strtod
        -- at every step of every insert's scan (the top cost of a claim in profiles).
        local now = t[2] == '0' and t[1] or fmt('%d', tonumber(t[1]) + 1)
        local out, hash, index, tags = {}, {}, {}, {serial}
        local n, no, nh, ni = 0, 0, 0, 0
        local find, sub, match = string.find, string.sub, string.match
        local TAG, EXCHANGE, ROUTING = 'delivery_tag": "', 'exchange": "', 'routing_key": "'
        -- The value after `key` ('name": "' as kombu's json.dumps writes it), else any spacing,
        -- searched from `from` (kombu writes "properties" last: a claim looks in the last
        -- \(fieldSearchTail) bytes first, so neither a small envelope nor a many-megabyte chord body is
        -- scanned whole three times), then, if not there, from the start.
        -- The search starts from the name's first letter (a plain search stops at every
        -- quote in the JSON otherwise), then checks the opening quote: the same first match.
        local function field(s, from, key, name, empty)
          local i = find(s, key, from, true)
          if i and sub(s, i - 1, i - 1) ~= '"' then
            i = find(s, '"' .. key, from, true)
            i = i and i + 1
          end
          if i then
            local j = find(s, '"', i + #key, true)
            if j and (empty or j > i + #key) then return sub(s, i + #key, j - 1) end
          end
          local v = match(s, '"' .. name .. '"%s*:%s*"([^"]' .. (empty and '*' or '+') .. ')"', from)
          if v or from == 1 then return v end
          return field(s, 1, key, name, empty)
        end
        -- HSET/ZADD once per batch (in chunks, within Lua's unpack limit).
        local function flush()
          if nh > 0 then
            redis.call('HSET', KEYS[1], unpack(hash, 1, nh))
            redis.call('ZADD', KEYS[2], now, '\(indexWidener)', unpack(index, 1, ni))
            redis.call('ZREM', KEYS[2], '\(indexWidener)')
            nh, ni = 0, 0
          end
        end
        -- Redis 7's LMPOP pops from the first non-empty list of several in one call (kombu's
        -- priority order): one call where a claim that empties the queue made one per list.
        -- Older servers RPOP each list in turn.
        local lmpop = (redis.REDIS_VERSION_NUM or 0) >= 0x070000
        local i = 3
        while i <= lists and n < max and not full do
          local key, popped
          if lmpop then
            local args = {fmt('%d', lists - i + 1)}
            for j = i, lists do args[#args + 1] = KEYS[j] end
            args[#args + 1], args[#args + 2], args[#args + 3] = 'RIGHT', 'COUNT', n == 0 and ARGV[1] or fmt('%d', max - n)
            local r = redis.call('LMPOP', unpack(args))
            if not r then break end
            key, popped = r[1], r[2]
            while KEYS[i] ~= key do i = i + 1 end
          else
            key, popped = KEYS[i], redis.call('RPOP', KEYS[i], n == 0 and ARGV[1] or fmt('%d', max - n))
          end
          i = i + 1
          local queue = string.gsub(key, '\\6\\22%d$', '')
          popped = popped or {}
          for k, m in ipairs(popped) do
            if maxBytes and n > 0 and bytes >= maxBytes then
              -- The claim holds its bound: the rest goes back to the consuming end, in order.
              for j = #popped, k, -1 do redis.call('RPUSH', key, popped[j]) end
              full = true
              break
            end
            bytes = bytes + #m
            local from = #m > \(fieldSearchTail) and #m - \(fieldSearchTail - 1) or 1
            local tag = field(m, from, TAG, 'delivery_tag', false)
            local record
            if tag then
              local ex = field(m, from, EXCHANGE, 'exchange', true) or ''
              local rk = field(m, from, ROUTING, 'routing_key', true) or queue
              record = '[' .. m .. ', "' .. ex .. '", "' .. rk .. '"]'
            else
              tag = 'celeris-undecodable-' .. t[1] .. '.' .. t[2] .. '-' .. n
              record = cjson.encode({m, '', queue})
            end
            hash[nh + 1], hash[nh + 2] = tag, record
            index[ni + 1], index[ni + 2] = now, tag
            nh, ni = nh + 2, ni + 2
            if nh >= 2000 then flush() end
            n = n + 1
            tags[n + 1] = tag
            out[no + 1], out[no + 2], out[no + 3] = tag, key, m
            no = no + 3
          end
        end
        flush()
        if serial ~= '' and n > 0 then
          redis.call('SET', KEYS[#KEYS], table.concat(tags, '\\n'), 'EX', '86400')
        end
        return out
        """)

    /// Where this worker's claims write their receipts (nil: no receipts).
    public let receiptKey: String?
    /// The bound on one claim's bytes (nil: none): a claim stops taking messages once
    /// it holds this many bytes, so a queue of large messages cannot make one batch
    /// (the prefetch window's worth) exhaust the worker's memory.
    public let claimBytes: Int?

    /// `receiptKey`: where each claim writes what it took, so a worker whose connection
    /// dropped before a claim's reply came can put those messages back (`receipt(of:on:)`)
    /// instead of leaving them in `unacked` until the visibility timeout. One per worker.
    ///
    ///     let claim = DeliveryClaim(receiptKey: DeliveryClaim.receiptKey(hostname: "w1@host"))
    public init(receiptKey: String? = nil, claimBytes: Int? = nil) {
        self.receiptKey = receiptKey
        self.claimBytes = claimBytes
    }

    /// A worker's receipt key.
    public static func receiptKey(hostname: String) -> String { "celeris.claim_receipt:\(hostname)" }

    /// The tags the claim `serial` took, from this worker's receipt; empty when the receipt
    /// is another claim's (the claim never ran, or took nothing).
    public func receipt(of serial: String, on redis: RedisConnection) throws(RedisError) -> [String] {
        guard let receiptKey, let text = try redis.command("GET", receiptKey).text else { return [] }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.first == serial else { return [] }
        return Array(lines.dropFirst())
    }

    /// Claim up to `max` messages from `queues` (kombu's priority order). `serial`: this
    /// claim's, written to the receipt (when the claim has a receipt key).
    public func claim(on redis: RedisConnection, queues: [String], max: Int, serial: String = "") throws(RedisError)
        -> [Delivery]
    {
        try claim(on: redis, pending: Pending(keys: keys(queues), max: max, serial: serial))
    }

    /// Run the script for `pending` and read its reply, loading it first where Redis lacks it.
    private func claim(on redis: RedisConnection, pending: Pending) throws(RedisError) -> [Delivery] {
        if try send(pending, on: redis), let took = try finish(pending, on: redis) { return took }
        _ = try DeliveryClaim.script.load(on: redis)
        guard try send(pending, on: redis), let took = try finish(pending, on: redis) else {
            throw .reply("the claim script was lost again right after loading")
        }
        return took
    }

    /// Send the EVALSHA; false when the script is not loaded yet.
    private func send(_ pending: Pending, on redis: RedisConnection) throws(RedisError) -> Bool {
        let serial = receiptKey == nil ? "" : pending.serial.isEmpty ? "-" : pending.serial
        guard let claimBytes else {
            return try DeliveryClaim.script.start(on: redis, keys: pending.keys, args: [String(pending.max), serial])
        }
        return try DeliveryClaim.script.start(
            on: redis, keys: pending.keys, args: [String(pending.max), serial, String(claimBytes)])
    }

    /// The script's keys: kombu's bookkeeping, the lists in consume order, then the receipt key.
    public func keys(_ queues: [String]) -> [String] {
        var keys = [DeliveryClaim.unackedKey, DeliveryClaim.unackedIndexKey] + QueueKeys.consumeOrder(queues: queues)
        if let receiptKey { keys.append(receiptKey) }
        return keys
    }

    /// A claim sent ahead (`start`), whose reply `finish` reads: Redis runs it while the caller works.
    public struct Pending: Sendable {
        let keys: [String]
        let max: Int
        /// The claim's serial, written to the receipt with its tags.
        public let serial: String
    }

    /// Send a claim without waiting; nil when it cannot be sent ahead (script not loaded yet).
    public func start(on redis: RedisConnection, queues: [String], max: Int, serial: String = "") throws(RedisError)
        -> Pending?
    {
        try start(on: redis, keys: keys(queues), max: max, serial: serial)
    }

    /// `start` with the script's keys made already (`keys(queues)`: a caller that claims
    /// from the same queues every turn makes them once).
    public func start(on redis: RedisConnection, keys: [String], max: Int, serial: String = "") throws(RedisError)
        -> Pending?
    {
        let pending = Pending(keys: keys, max: max, serial: serial)
        return try send(pending, on: redis) ? pending : nil
    }

    /// What a claim sent ahead took, read in its turn among the connection's replies;
    /// nil when Redis had lost the script: claim again once the later replies are read.
    public func finish(_ pending: Pending, on redis: RedisConnection) throws(RedisError) -> [Delivery]? {
        var spare = SpareBuffers()
        return try finish(pending, on: redis, reusing: &spare)
    }

    /// `finish`, copying the messages and tags into `spare`'s buffers while it has any.
    public func finish(_ pending: Pending, on redis: RedisConnection, reusing spare: inout SpareBuffers)
        throws(RedisError) -> [Delivery]?
    {
        try DeliveryClaim.script.finish(on: redis) { (r) throws(RedisError) in try Self.deliveries(r, reusing: &spare) }
    }

    /// Claim again what a `finish` that returned nil did not take.
    public func retry(_ pending: Pending, on redis: RedisConnection) throws(RedisError) -> [Delivery] {
        try claim(on: redis, pending: pending)
    }

    /// The claim script's flat reply (tag, list key, message, …) read in place: one
    /// copy of each message.
    ///
    ///     let took = try redis.read { try DeliveryClaim.deliveries($0) }
    public static func deliveries(_ reply: RedisReply) throws(RedisError) -> [Delivery] {
        var spare = SpareBuffers()
        return try deliveries(reply, reusing: &spare)
    }

    /// `deliveries`, each message and tag copied into `spare`'s buffers while it has any.
    public static func deliveries(_ reply: RedisReply, reusing spare: inout SpareBuffers) throws(RedisError)
        -> [Delivery]
    {
        guard reply.isArray else { throw .reply("claim script returned \(RedisValue(reply: reply.pointer))") }
        let n = reply.count
        var out = spare.deliveryList()
        out.reserveCapacity(n / 3)
        var i = 0
        while i + 2 < n {
            out.append(
                Delivery(
                    tag: spare.tag(reply[i].bytes), listKey: reply[i + 1].text, raw: spare.envelope(reply[i + 2].bytes))
            )
            i += 3
        }
        return out
    }
}
