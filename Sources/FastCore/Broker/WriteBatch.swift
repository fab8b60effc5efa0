/// The consumer's pipelined write for one loop turn, as RESP: every entry's plain
/// commands (progress updates, in order), then every completion's MULTI … EXEC body
/// merged into one transaction whose acks fold into one ZREM and one HDEL, then the
/// consumer's own commands. Still atomic: each result is stored iff its delivery is
/// acknowledged, at a few commands per batch instead of five per task. Each entry
/// encodes its `Part` on the thread that posts it, so the consumer only concatenates.
///
///     var batch = WriteBatch()
///     for e in entries { batch.add(e.part) }
///     batch.add(own: ownWrites)
///     try batch.append(to: redis)   // then read batch.replies replies
public struct WriteBatch {
    /// One outbox entry's commands, encoded and split the way the batch merges them.
    public struct Part: Sendable {
        var plain: [UInt8] = []
        var plainCount = 0
        /// Where each plain command ends in `plain` (so a write can keep only the ones Redis refused).
        var plainEnds: [Int] = []
        var transaction: [UInt8] = []
        var transactionCount = 0
        /// The delivery the entry acknowledges (its ZREM + HDEL, folded).
        var acked: String?

        /// An empty part, filled by `store` and `transact` (what an executor does).
        public init() {}

        /// An empty part whose transaction is encoded into `buffer`'s storage (emptied
        /// first, and `buffer` left empty): a recycled buffer saves the allocation.
        ///
        ///     var part = WriteBatch.Part(reusing: &spare)
        public init(reusing buffer: inout [UInt8]) {
            buffer.removeAll(keepingCapacity: true)
            swap(&transaction, &buffer)
        }

        /// The transaction's bytes, taken out for reuse once written (the part keeps none).
        mutating func takeTransactionBuffer() -> [UInt8] {
            var out: [UInt8] = []
            swap(&out, &transaction)
            return out
        }

        /// Split `commands`: a MULTI … EXEC group's body joins the batch's transaction;
        /// anything else goes out as it is. `tag`: a delivery the transaction acknowledges
        /// (folded into the batch's one ZREM and one HDEL).
        public init(_ commands: [[String]], acknowledging tag: String? = nil) {
            acked = tag
            guard commands.count >= 2, commands[0].count == 1, commands[0][0] == "MULTI",
                commands[commands.count - 1].count == 1, commands[commands.count - 1][0] == "EXEC"
            else {
                for c in commands {
                    RESP.append(c, to: &plain)
                    plainEnds.append(plain.count)
                }
                plainCount = commands.count
                return
            }
            transact(commands[1..<(commands.count - 1)])
        }

        /// Whether the part has a transaction (its commands or an ack): its replies are
        /// the batch transaction's, all-or-nothing.
        var hasTransaction: Bool { transactionCount > 0 || acked != nil }

        /// Keep only the plain commands whose index `keep` says (those Redis refused, to be
        /// sent again: the others landed).
        mutating func keepPlain(_ keep: (Int) -> Bool) {
            var start = 0
            var kept: [UInt8] = []
            var ends: [Int] = []
            for (i, end) in plainEnds.enumerated() {
                if keep(i) {
                    kept += plain[start..<end]
                    ends.append(kept.count)
                }
                start = end
            }
            plain = kept
            plainEnds = ends
            plainCount = ends.count
        }

        /// This part's plain commands only (its transaction landed; these are sent again).
        var plainOnly: Part {
            var p = Part()
            p.plain = plain
            p.plainEnds = plainEnds
            p.plainCount = plainCount
            return p
        }

        /// Add commands to the batch's transaction.
        public mutating func transact(_ commands: some Collection<[String]>) {
            for c in commands { RESP.append(c, to: &transaction) }
            transactionCount += commands.count
        }

        /// Add a result record's SETEX (SET if it never expires) + PUBLISH to the transaction,
        /// encoded from the record with no command arrays in between. `expires`: seconds the
        /// record lives instead of its own `expires` (0: forever).
        ///
        ///     part.store(record, expires: 3600)
        public mutating func store(_ record: ResultRecord, expires: Int? = nil) {
            if let expires, expires != record.expires {
                var record = record
                record.expires = expires
                record.appendStoreCommands(to: &transaction)
            } else {
                record.appendStoreCommands(to: &transaction)
            }
            transactionCount += 2
        }

        /// The transaction also acknowledges the delivery `tag`.
        public mutating func acknowledge(_ tag: String) { acked = tag }
    }

    private var parts: [Part] = []
    private var transactionCount = 0
    /// The acknowledged tags as RESP bulk strings, for the one ZREM and one HDEL.
    private var ackedTags: [UInt8] = []
    private var ackedCount = 0
    private var own: [UInt8] = []
    private var plainCount = 0
    private var ownCount = 0
    /// Where the transaction's end (ZREM, HDEL, EXEC) is encoded when the batch is sent.
    private var close: [UInt8] = []

    public init() {}

    /// Add one entry's part (kept as it is: its bytes are copied once, by `append(to:)`).
    public mutating func add(_ part: Part) {
        parts.append(part)
        plainCount += part.plainCount
        transactionCount += part.transactionCount
        if var tag = part.acked {
            tag.withUTF8 { RESP.appendBulk($0, to: &ackedTags) }
            ackedCount += 1
        }
    }

    /// Add commands that go last, after the transaction (the consumer's own writes).
    public mutating func add(own commands: [[String]]) {
        for c in commands { RESP.append(c, to: &own) }
        ownCount += commands.count
    }

    /// Empty the batch for the next loop turn, keeping its buffers' storage (the parts
    /// are let go, so their buffers can be reused by the executors).
    public mutating func removeAll() {
        parts.removeAll(keepingCapacity: true)
        ackedTags.removeAll(keepingCapacity: true)
        own.removeAll(keepingCapacity: true)
        transactionCount = 0
        ackedCount = 0
        plainCount = 0
        ownCount = 0
    }

    private var hasTransaction: Bool { transactionCount > 0 || ackedCount > 0 }

    /// Nothing to send.
    public var isEmpty: Bool { plainCount == 0 && !hasTransaction && ownCount == 0 }

    /// How many replies the batch's commands get.
    public var replies: Int {
        plainCount + (hasTransaction ? 2 + transactionCount + (ackedCount == 0 ? 0 : 2) : 0) + ownCount
    }

    /// Queue the batch on `redis` without waiting, piece by piece in pipeline order.
    public mutating func append(to redis: RedisConnection) throws(RedisError) {
        try pieces { (bytes) throws(RedisError) in try redis.append(resp: bytes) }
    }

    /// The batch as one RESP pipeline (what `append(to:)` queues).
    public var wire: [UInt8] {
        mutating get {
            var out: [UInt8] = []
            pieces { out += $0 }
            return out
        }
    }

    private static let multi = RESP.format(["MULTI"])
    private static let exec = RESP.format(["EXEC"])

    /// The batch's bytes in pipeline order: plain commands, the transaction, own commands.
    private mutating func pieces<E: Error>(_ body: ([UInt8]) throws(E) -> Void) throws(E) {
        for p in parts where p.plainCount > 0 { try body(p.plain) }
        if hasTransaction {
            try body(Self.multi)
            for p in parts where p.transactionCount > 0 { try body(p.transaction) }
            close.removeAll(keepingCapacity: true)
            if ackedCount > 0 { DeliveryClaim.appendAcks(tags: ackedTags, count: ackedCount, to: &close) }
            close += Self.exec
            try body(close)
        }
        if ownCount > 0 { try body(own) }
    }
}
