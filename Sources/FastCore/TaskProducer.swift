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
        var cmds: [[String]] = []
        if !declared.contains(message.queue) {
            declared.insert(message.queue)
            let member = QueueKeys.bindingMember(routingKey: message.queue, queue: message.queue)
            cmds.append(["SADD", QueueKeys.bindingKey(exchange: message.queue), member])
            cmds.append(["SADD", QueueKeys.bindingKey(exchange: message.queue, permanent: true), member])
        }
        cmds.append(["LPUSH", QueueKeys.listKey(queue: message.queue, priority: message.priority), message.envelope()])
        return cmds
    }
}
