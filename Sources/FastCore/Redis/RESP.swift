import CEventShim

/// RESP in memory (no connection): the one command encoder every Redis client
/// here uses (a pipeline, a write batch, a result record's SETEX, a claim's
/// commands), and a reply reader for benchmarks and for checking bytes in tests.
///
///     let wire = RESP.format(["LPUSH", "celery", envelope])  // *3\r\n$5\r\nLPUSH…
///     let reply = RESP.parse(Array("*2\r\n$1\r\na\r\n:1\r\n".utf8))  // .array([.string("a"), .integer(1)])
public enum RESP {
    /// One command as RESP bytes.
    public static func format(_ args: [String]) -> [UInt8] {
        var out: [UInt8] = []
        append(args, to: &out)
        return out
    }

    /// Append one command's RESP to `out`: a pipeline writes a whole batch this way.
    public static func append(_ args: [String], to out: inout [UInt8]) {
        // Grow once: a count line, then per argument a length line (at most 14 bytes
        // for any length an array can hold) and the bytes with their CRLF.
        // (Doubling, so a long pipeline built command by command is not copied each time.)
        var needed = 16
        for a in args { needed += 16 + a.utf8.count }
        if out.capacity < out.count + needed { out.reserveCapacity(max(out.count + needed, out.capacity * 2)) }
        appendCount(args.count, to: &out)
        appendBulks(args, to: &out)
    }

    /// Append one command written as its name and arguments, with no array of them built.
    ///
    ///     RESP.append(command: "LLEN", key, to: &out)
    public static func append(command name: StaticString, _ args: String..., to out: inout [UInt8]) {
        appendCount(1 + args.count, to: &out)
        appendBulk(name, to: &out)
        appendBulks(args, to: &out)
    }

    /// A command's count line, `*n` CRLF, for commands written argument by argument.
    static func appendCount(_ n: Int, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "*"))
        decimal(n, to: &out)
    }

    /// One argument as a bulk string: `first` and `second` back to back (a key's prefix and id).
    static func appendBulk<First: Collection<UInt8>, Second: Collection<UInt8>>(
        _ first: First, _ second: Second, to out: inout [UInt8]
    ) {
        out.append(UInt8(ascii: "$"))
        decimal(first.count + second.count, to: &out)
        out.append(contentsOf: first)
        out.append(contentsOf: second)
        out.append(0x0D)
        out.append(0x0A)
    }

    /// A literal argument (a command's name) as a bulk string.
    static func appendBulk(_ text: StaticString, to out: inout [UInt8]) {
        appendBulk(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount), to: &out)
    }

    /// Each string as a bulk string, from its contiguous UTF-8.
    static func appendBulks(_ args: some Sequence<String>, to out: inout [UInt8]) {
        for var a in args { a.withUTF8 { appendBulk($0, to: &out) } }
    }

    /// One argument as a bulk string.
    static func appendBulk<Bytes: Collection<UInt8>>(_ bytes: Bytes, to out: inout [UInt8]) {
        appendBulk(bytes, EmptyCollection(), to: &out)
    }

    /// `n` in decimal, then CRLF.
    static func decimal(_ n: Int, to out: inout [UInt8]) {
        if n < 10 {
            out.append(UInt8(ascii: "0") + UInt8(n))
        } else {
            var digits:
                (
                    UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                    UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
                ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            var count = 0
            var v = n
            withUnsafeMutableBytes(of: &digits) { d in
                while v > 0 {
                    d[count] = UInt8(ascii: "0") + UInt8(v % 10)
                    v /= 10
                    count += 1
                }
                for i in stride(from: count - 1, through: 0, by: -1) { out.append(d[i]) }
            }
        }
        out.append(0x0D)
        out.append(0x0A)
    }

    /// The first complete reply in `bytes`, or nil when incomplete or not RESP.
    public static func parse(_ bytes: [UInt8]) -> RedisValue? {
        parse(bytes) { RedisValue(reply: $0.pointer) }
    }

    /// Parse one complete reply and let `body` read it in place, as a connection's
    /// `read` does; nil when the bytes are incomplete or not RESP.
    public static func parse<T, E: Error>(_ bytes: [UInt8], _ body: (RedisReply) throws(E) -> T) throws(E) -> T? {
        try bytes.withUnsafeBufferPointer { (b) throws(E) -> T? in
            guard let base = b.baseAddress,
                let reply = ce_resp_parse(UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self), b.count)
            else { return nil }
            defer { ce_reply_free(reply) }
            return try body(RedisReply(pointer: reply))
        }
    }
}
