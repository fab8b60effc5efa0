/// The task message Celery 5.7 beat sends for a due entry, built on `TaskMessage` and sent the way
/// `TaskProducer` sends any task, so Python Celery workers and Celeris workers run it alike.
///
/// What beat adds to a plain `send_task` (pinned against a real `celery beat` by
/// `BeatMessageTests`): the `celery_beat_task: true` header, `ignore_result: null` (beat passes
/// none), `argsrepr` as a list's repr (`[2, 3]`: an entry's args come from JSON, a list, where
/// `TaskMessage` writes a tuple's), and with `expires` both the `expires` header (send time + seconds, ISO 8601 UTC) and
/// kombu's `expiration` property (the seconds in whole milliseconds, as a string). The due time
/// itself is not in Celery's message: `sentAt` is when the message leaves.
///
///     var producer = TaskProducer()
///     let commands = BeatMessage.sendCommands(for: entry, sentAt: CeleryTime.now(), producer: &producer)
///     _ = try redis.pipeline(commands)
public enum BeatMessage {
    /// The message for `entry` sent at `sentAt` (epoch seconds) with task id `id`.
    ///
    ///     let m = BeatMessage.message(for: entry, sentAt: CeleryTime.now())
    public static func message(
        for entry: ScheduleEntry, sentAt: Double, id: String = TaskMessage.newId(),
        origin: String = TaskMessage.defaultOrigin
    ) -> TaskMessage {
        var m = TaskMessage(
            task: entry.task, args: entry.args, kwargs: entry.kwargs, queue: entry.options.queue ?? "celery",
            priority: entry.options.priority ?? 0, id: id, origin: origin)
        if let expires = entry.options.expires {
            m.expires = CeleryTime.isoformat(sentAt + expires)
        }
        // The schedule's args are a list (JSON has no tuple), so Celery's `saferepr(args)` is a list's repr.
        let argsRepr = PythonRepr.saferepr(.array(entry.args), limit: PythonRepr.argsMaxLength)
        m.headers = m.protocolHeaders().setting("argsrepr", .string(argsRepr)).setting("ignore_result", .null)
            .setting("celery_beat_task", true)
        return m
    }

    /// kombu's `expiration` property for `expires` seconds: `str(int(seconds * 1000))`, a negative
    /// time counting as 0 (as Celery does) and anything past `ScheduleFile.longestSeconds` as that.
    ///
    ///     BeatMessage.expiration(seconds: 30)  // "30000"
    public static func expiration(seconds: Double) -> String {
        let s = seconds.isNaN ? 0 : min(max(seconds, 0), ScheduleFile.longestSeconds)
        return String(Int64((s * 1000).rounded(.towardZero)))
    }

    /// The envelope LPUSHed for `message`: `message.envelope()`, with kombu's `expiration`
    /// property (after `delivery_mode`, kombu's order) when the entry has `expires`.
    ///
    ///     let text = BeatMessage.envelope(of: m, for: entry)
    public static func envelope(of message: TaskMessage, for entry: ScheduleEntry) -> String {
        message.envelope(expiration: entry.options.expires.map { expiration(seconds: $0) })
    }

    /// The Redis commands sending `entry` at `sentAt`: the queue's bindings the first time
    /// (`TaskProducer.declareCommands`), then the LPUSH onto its priority list.
    ///
    ///     let commands = BeatMessage.sendCommands(for: entry, sentAt: now, producer: &producer)
    public static func sendCommands(
        for entry: ScheduleEntry, sentAt: Double, id: String = TaskMessage.newId(), producer: inout TaskProducer
    ) -> [[String]] {
        let m = message(for: entry, sentAt: sentAt, id: id)
        return producer.declareCommands(queue: m.queue) + [
            ["LPUSH", QueueKeys.listKey(queue: m.queue, priority: m.priority), envelope(of: m, for: entry)]
        ]
    }
}
