import Foundation

/// kombu's Redis key layout for queues: a list per priority step, and the
/// binding sets that tell kombu which queue a routing key lands in.
///
///     QueueKeys.listKey(queue: "celery", priority: 5)  // "celery\u{06}\u{16}3"
public enum QueueKeys {
    /// kombu's separator inside priority keys and binding members.
    public static let separator = "\u{06}\u{16}"
    /// `separator`'s two bytes, for searching keys byte by byte.
    private static let separatorBytes: (UInt8, UInt8) = {
        let b = Array(separator.utf8)
        return (b[0], b[1])
    }()
    /// kombu's default priority steps for Redis.
    public static let prioritySteps = [0, 3, 6, 9]

    /// The step a priority lands in: the highest step not above it.
    public static func step(forPriority priority: Int) -> Int {
        prioritySteps.last(where: { $0 <= priority }) ?? 0
    }

    /// The Redis list holding messages of `priority` for `queue`.
    public static func listKey(queue: String, priority: Int) -> String {
        let step = step(forPriority: priority)
        return step == 0 ? queue : queue + separator + String(step)
    }

    /// All lists of one queue, highest priority (step 0) first.
    public static func listKeys(queue: String) -> [String] {
        prioritySteps.map { $0 == 0 ? queue : queue + separator + String($0) }
    }

    /// The lists BRPOP would read for `queues`, in kombu's order: every
    /// queue's step-0 list, then every step-3 list, and so on.
    public static func consumeOrder(queues: [String]) -> [String] {
        prioritySteps.flatMap { step in queues.map { step == 0 ? $0 : $0 + separator + String(step) } }
    }

    /// The queue a list key belongs to: the key up to its last separator, if it has one.
    public static func queueName(ofListKey key: String) -> String {
        var key = key
        let (first, second) = separatorBytes
        let cut: Int? = key.withUTF8 { b in
            var i = b.count - 2
            while i >= 0 {
                if b[i] == first && b[i + 1] == second { return i }
                i -= 1
            }
            return nil
        }
        guard let cut else { return key }
        return key.withUTF8 { String(decoding: UnsafeBufferPointer(rebasing: $0[..<cut]), as: UTF8.self) }
    }

    /// The binding set of an exchange (`_kombu.binding.<exchange>`).
    public static func bindingKey(exchange: String, permanent: Bool = false) -> String {
        (permanent ? "_kombu.binding_permanent." : "_kombu.binding.") + exchange
    }

    /// A binding member: `<routing_key>\x06\x16<pattern>\x06\x16<queue>`.
    public static func bindingMember(routingKey: String, queue: String, pattern: String = "") -> String {
        routingKey + separator + pattern + separator + queue
    }
}
