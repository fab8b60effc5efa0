import CEventShim

/// RESP in memory (no connection): the command formatter and reply reader the
/// Redis connections use, for benchmarks and for checking bytes in tests.
///
///     let wire = RESP.format(["LPUSH", "celery", envelope])  // *3\r\n$5\r\nLPUSH…
///     let reply = RESP.parse(Array("*2\r\n$1\r\na\r\n:1\r\n".utf8))  // .array([.string("a"), .integer(1)])
public enum RESP {
    /// One command as RESP bytes.
    public static func format(_ args: [String]) -> [UInt8] {
        withArgv(args) { argc, argv, lens in
            var out: UnsafeMutablePointer<CChar>?
            let n = ce_resp_format(argc, argv, lens, &out)
            defer { ce_resp_free(out) }
            guard n >= 0, let out else { return [] }
            return Array(UnsafeRawBufferPointer(start: out, count: Int(n)))
        }
    }

    /// The first complete reply in `bytes`, or nil when incomplete or not RESP.
    public static func parse(_ bytes: [UInt8]) -> RedisValue? {
        bytes.withUnsafeBufferPointer { b -> RedisValue? in
            guard let base = b.baseAddress,
                let reply = ce_resp_parse(UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self), b.count)
            else { return nil }
            defer { ce_reply_free(reply) }
            return RedisValue(reply: reply)
        }
    }
}
