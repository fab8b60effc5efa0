/// The Redis commands that send a task message the way a kombu producer
/// does: declare the queue's binding once, then LPUSH the envelope onto the
/// list for its priority step.
///
///     var producer = TaskProducer()
///     let cmds = producer.sendCommands(for: TaskMessage(task: "add", args: [2, 3]))
public struct TaskProducer: Sendable {
    private var declared: Set<String> = []

    public init() {}

    /// Forget declared queues (after reconnecting to a Redis that may be new).
    public mutating func reset() { declared.removeAll() }

    /// SADD bindings (first time per queue) and LPUSH; the last reply is the list length.
    public mutating func sendCommands(for message: TaskMessage) -> [[String]] {
        declareCommands(queue: message.queue) + [
            ["LPUSH", QueueKeys.listKey(queue: message.queue, priority: message.priority), message.envelope()]
        ]
    }

    /// The SADDs binding `queue` the first time it is used (none after that).
    public mutating func declareCommands(queue: String) -> [[String]] {
        guard declared.insert(queue).inserted else { return [] }
        let member = QueueKeys.bindingMember(routingKey: queue, queue: queue)
        return [
            ["SADD", QueueKeys.bindingKey(exchange: queue), member],
            ["SADD", QueueKeys.bindingKey(exchange: queue, permanent: true), member],
        ]
    }

    /// The LPUSH of `sendCommands` in bytes, envelope built without a `String`.
    public static func pushCommand(for message: TaskMessage) -> [[UInt8]] {
        [
            Array("LPUSH".utf8), Array(QueueKeys.listKey(queue: message.queue, priority: message.priority).utf8),
            message.envelopeBytes(),
        ]
    }
}
