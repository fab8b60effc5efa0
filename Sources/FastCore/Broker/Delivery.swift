/// One claimed message, whichever claim took it: its delivery tag (the key of its
/// record in kombu's `unacked`), the queue list it came from, and its envelope's bytes.
///
///     for d in try claim.claim(on: redis, queues: ["celery"], max: 8) { print(d.tag, d.queue) }
public struct Delivery: Sendable {
    public let tag: String
    public let listKey: String
    public let raw: [UInt8]
    /// The queue's name (the list key without its priority suffix).
    public var queue: String { QueueKeys.queueName(ofListKey: listKey) }

    public init(tag: String, listKey: String, raw: [UInt8]) {
        self.tag = tag
        self.listKey = listKey
        self.raw = raw
    }
}
