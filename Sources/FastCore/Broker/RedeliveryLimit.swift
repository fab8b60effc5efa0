/// The safety net for a message that kills whoever runs it: how many times a delivery
/// may go back to its queue after its lease expired (the worker that claimed it
/// crashed, was killed, lost its connection, or held it past the visibility timeout),
/// before it goes to the dead-letter list instead, with the reason.
///
/// A restore cannot tell a dead worker from one that is slow to renew: Python Celery
/// workers never renew their leases, so in a fleet that mixes them with Celeris a
/// Python-held ETA/countdown task, or a task running longer than the visibility
/// timeout, is restored (and counted) each time its lease runs out, as kombu restores
/// it. Such a fleet should raise `--max-redeliveries` above the restores those tasks
/// can see, or set it negative (no limit).
///
/// The count travels with the message: each restore (`DeliveryRestore.recover`, and a
/// claiming list's, `ClaimByMove`) writes it in the envelope's `properties`
/// (`countKey`), next to the `redelivered` flag kombu sets, so it needs no key of its
/// own, nothing on the acknowledgement path, and it survives a restore by a Python
/// worker (kombu keeps unknown properties). A restore that finds the count already at
/// `max` dead-letters the delivery instead. Celery has no such limit (a message that
/// crashes its worker comes back forever); Celeris dead-letters after 5 redeliveries by
/// default (`--max-redeliveries`), a negative limit keeps Celery's behaviour. A
/// returned delivery (a warm or cold stop, a lost claim reply) is not counted: its
/// worker gave it back.
///
///     let limit = RedeliveryLimit(max: 5, deadLetterKey: "celeris.dead_letter", worker: "w1@host")
///     try DeliveryRestore().recover(on: redis, visibilityTimeout: 3600, now: now, redeliveries: limit)
public struct RedeliveryLimit: Sendable {
    /// The envelope property holding how many times the message was restored.
    public static let countKey = "celeris_redeliveries"
    /// The default limit (`--max-redeliveries`).
    public static let defaultMax = 5

    /// Restores allowed; the next one dead-letters. Negative: no limit.
    public let max: Int
    /// The dead-letter list (the worker's `--dead-letter-key`).
    public let deadLetterKey: String
    /// The restoring worker, named in the dead-letter entry.
    public let worker: String

    public init(max: Int = defaultMax, deadLetterKey: String = "celeris.dead_letter", worker: String) {
        self.max = max
        self.deadLetterKey = deadLetterKey
        self.worker = worker
    }

    /// Whether a message already restored `count` times goes to the dead-letter list at its next restore.
    public func exhausted(_ count: Int) -> Bool { max >= 0 && count >= max }

    /// The restore count an envelope carries (0 when it has none, or a value that is not a count).
    public static func count(of envelope: JSON) -> Int {
        guard let n = envelope["properties"]?[countKey]?.intValue, n > 0, n < Int64(Int32.max) else { return 0 }
        return Int(n)
    }

    /// `envelope` marked redelivered as kombu's restore marks it (headers and delivery_info)
    /// and, when `counting`, with its restore count one higher.
    public static func redelivered(_ envelope: JSON, counting: Bool) -> JSON {
        var envelope = envelope
        if let headers = envelope["headers"], case .object = headers {
            envelope = envelope.setting("headers", headers.setting("redelivered", true))
        }
        guard var properties = envelope["properties"], case .object = properties else { return envelope }
        if let info = properties["delivery_info"], case .object = info {
            properties = properties.setting("delivery_info", info.setting("redelivered", true))
        }
        if counting { properties = properties.setting(countKey, .int(Int64(count(of: envelope) + 1))) }
        return envelope.setting("properties", properties)
    }

    /// The dead-letter entry for a message whose restores ran out, in the shape the
    /// worker's other dead letters have (`reason`, `queue`, `delivery_tag`, `worker`,
    /// `date`, `message`: the envelope's text as it was claimed).
    public func entry(tag: String, queue: String, message: String, now: Double) -> String {
        let reason =
            "restored \(max) times after its lease expired, and its lease expired again: its worker stopped, "
            + "was killed, lost its connection, or held it past the visibility timeout; dead-lettered after "
            + "\(max) redeliveries (--max-redeliveries)"
        let entry: JSON = [
            "reason": .string(reason), "queue": .string(queue), "delivery_tag": .string(tag),
            "worker": .string(worker), "date": .string(CeleryTime.isoformat(now)), "message": .string(message),
        ]
        return entry.serialized()
    }
}
