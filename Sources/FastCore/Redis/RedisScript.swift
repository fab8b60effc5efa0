/// A Lua script Redis runs by its SHA1 (EVALSHA): loaded on first use, and
/// again after NOSCRIPT (a restarted or flushed Redis), so the script's text
/// is not resent with every call.
///
///     static let move = RedisScript("return redis.call('RPOPLPUSH', KEYS[1], KEYS[2])")
///     try move.run(on: redis, keys: ["a", "b"])
public final class RedisScript: Sendable {
    public let source: String
    private let sha = LockedBox<String?>(nil)

    public init(_ source: String) { self.source = source }

    /// Run once; a Redis error reply throws.
    @discardableResult
    public func run(on redis: RedisConnection, keys: [String], args: [String] = []) throws(RedisError) -> RedisValue {
        if let sha = sha.get() {
            let r = try redis.pipeline([command(sha: sha, keys: keys, args: args)])[0]
            guard let e = r.errorMessage else { return r }
            if !e.hasPrefix("NOSCRIPT") { throw .reply(e) }
        }
        let r = try redis.pipeline([command(sha: try load(on: redis), keys: keys, args: args)])[0]
        if let e = r.errorMessage { throw .reply(e) }
        return r
    }

    /// Start a run without waiting: the EVALSHA is written now and its reply read
    /// by `finish` (other replies must not be read in between). False when the
    /// script is not loaded yet: call `run` instead.
    public func start(on redis: RedisConnection, keys: [String], args: some Collection<String> = [])
        throws(RedisError) -> Bool
    {
        guard let sha = sha.get() else { return false }
        try redis.append("EVALSHA", [sha, String(keys.count)], keys, args)
        try redis.flush()
        return true
    }

    /// The reply of `start`'s run, read in place by `body`; nil when Redis had lost the
    /// script (NOSCRIPT): once the replies sent after it are read, `run` loads and runs it again.
    public func finish<T>(on redis: RedisConnection, _ body: (RedisReply) throws(RedisError) -> T) throws(RedisError)
        -> T?
    {
        try redis.read { (r) throws(RedisError) -> T? in
            guard r.isError else { return try body(r) }
            let e = r.text
            if !e.hasPrefix("NOSCRIPT") { throw .reply(e) }
            return nil
        }
    }

    /// Load the script (idempotent) and return its SHA, for callers that pipeline many calls.
    public func load(on redis: RedisConnection) throws(RedisError) -> String {
        guard let loaded = try redis.command("SCRIPT", "LOAD", source).text else {
            throw .reply("SCRIPT LOAD returned nothing")
        }
        sha.set(loaded)
        return loaded
    }

    /// The EVALSHA command for `sha`.
    public func command(sha: String, keys: [String], args: [String]) -> [String] {
        ["EVALSHA", sha, String(keys.count)] + keys + args
    }
}
