/// kombu's ack of a delivery: its tag removed from `unacked_index` (ZREM) and
/// `unacked` (HDEL). Twins, pinned equal by `CodecTests.testFoldedAcksMatchTheAckCommands`:
/// the commands for one delivery, and the same two commands folded over many
/// deliveries, written as RESP (a `WriteBatch`'s transaction).
extension DeliveryClaim {
    /// Commands that acknowledge a delivery (kombu's ack: ZREM + HDEL).
    public static func ackCommands(tag: String) -> [[String]] {
        [["ZREM", unackedIndexKey, tag], ["HDEL", unackedKey, tag]]
    }

    /// `ackCommands` for `count` deliveries at once, as RESP appended to `out`: one ZREM
    /// and one HDEL, each with every tag. `tags`: the tags as RESP bulk strings, back to back.
    static func appendAcks(tags: [UInt8], count: Int, to out: inout [UInt8]) {
        appendAck("ZREM", unackedIndexKey, tags: tags, count: count, to: &out)
        appendAck("HDEL", unackedKey, tags: tags, count: count, to: &out)
    }

    /// `command key tag…`.
    private static func appendAck(
        _ command: StaticString, _ key: String, tags: [UInt8], count: Int, to out: inout [UInt8]
    ) {
        RESP.appendCount(count + 2, to: &out)
        RESP.appendBulk(command, to: &out)
        var key = key
        key.withUTF8 { RESP.appendBulk($0, to: &out) }
        out += tags
    }
}
