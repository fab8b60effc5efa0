/// How many messages wait in a queue: the lengths of its kombu priority lists
/// (`name`, `name\x06\x163`, `\x06\x166`, `\x06\x169`) summed in one script call, so a
/// sampler makes one round trip per queue. The frontend's `celeris_queue_depth` gauge
/// and the worker's autoscaler and gauges both read depths this way.
///
///     let replies = try redis.pipeline(QueueDepth.commands(queues: ["celery"]))
///     let depths = QueueDepth.depths(queues: ["celery"], replies: replies.map(\.integer))
enum QueueDepth {
    /// KEYS: a queue's priority lists. Returns the sum of their lengths.
    static let script = "local n = 0 for _, k in ipairs(KEYS) do n = n + redis.call('LLEN', k) end return n"

    /// The command reading one queue's depth.
    static func command(queue: String) -> [String] {
        let keys = QueueKeys.listKeys(queue: queue)
        return ["EVAL", script, String(keys.count)] + keys
    }

    /// One command per queue, in order.
    static func commands(queues: [String]) -> [[String]] { queues.map { command(queue: $0) } }

    /// Each queue's depth from the replies of `commands` (a missing or error reply counts 0).
    static func depths(queues: [String], replies: [Int64?]) -> [String: Int] {
        var out: [String: Int] = [:]
        for (i, q) in queues.enumerated() { out[q, default: 0] += Int(i < replies.count ? replies[i] ?? 0 : 0) }
        return out
    }
}
