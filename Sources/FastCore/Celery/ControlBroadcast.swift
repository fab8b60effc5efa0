/// A remote-control command as Celery's `app.control.broadcast` publishes it (kombu's
/// pidbox fanout): the encoder beside `ControlRequest`, which decodes it.
///
///     let cmd = ControlBroadcast.revoke(id, terminate: true, db: 0, clock: 1, now: CeleryTime.now())
///     redis.send(cmd) { _ in }   // PUBLISH /0.celery.pidbox <envelope>
public enum ControlBroadcast {
    /// `celery.control.revoke(task_id, terminate=…, signal=…)`: no reply asked for, valid for
    /// Celery's default broadcast timeout (1 s, the `expires` header).
    public static func revoke(
        _ taskId: String, terminate: Bool, signal: String = "SIGTERM", db: Int, clock: Int, now: Double
    ) -> [String] {
        command(
            method: "revoke",
            arguments: ["task_id": .string(taskId), "terminate": .bool(terminate), "signal": .string(signal)], db: db,
            clock: clock, expires: now + 1)
    }

    /// PUBLISH of `method(arguments)` to every worker (no destination, no reply).
    public static func command(method: String, arguments: JSON, db: Int, clock: Int, expires: Double) -> [String] {
        let body: JSON = [
            "method": .string(method), "arguments": arguments, "destination": nil, "pattern": nil, "matcher": nil,
        ]
        let envelope = KombuEnvelope.make(
            body: body, headers: ["clock": .int(Int64(clock)), "expires": .double(expires)], exchange: "celery.pidbox",
            routingKey: "", deliveryMode: 2)
        return ["PUBLISH", KombuEnvelope.fanoutChannel(db: db, exchange: "celery.pidbox"), envelope]
    }
}
