/// What a worker's `GET /health` answers (beside `/metrics`, on `--metrics-port`): ready
/// (200) while it consumes and its broker link is up; 503 with the reason while it cannot
/// reach Redis, has not connected yet, or is shutting down (a warm shutdown fails readiness
/// first, so a load balancer or Kubernetes stops counting on it before it exits).
///
///     let h = consumer.health
///     connection.respond(status: h.status, json: h.json)
public struct WorkerHealth: Sendable, Equatable {
    /// True while the worker consumes and its broker link is up.
    public let ready: Bool
    /// Why it is not ready ("shutting down", "broker unreachable: …"); nil when ready.
    public let reason: String?
    let node: String
    let queues: [String]
    let poolSize: Int

    /// 200 when ready, else 503.
    public var status: Int { ready ? 200 : 503 }

    /// `{"status": "ok" | "unavailable", "reason"?, "node", "queues", "pool"}`.
    public var json: JSON {
        var fields: [(key: String, value: JSON)] = [("status", .string(ready ? "ok" : "unavailable"))]
        if let reason { fields.append(("reason", .string(reason))) }
        fields.append(("node", .string(node)))
        fields.append(("queues", .array(queues.map { .string($0) })))
        fields.append(("pool", .int(Int64(poolSize))))
        return .object(fields)
    }
}

extension Consumer {
    /// The worker's readiness now (thread-safe: read by the metrics server's thread).
    public var health: WorkerHealth {
        let reason: String? =
            switch phase.get() {
            case .warm: "shutting down"
            case .cold: "shutting down (cold)"
            case .consuming:
                pipeline.isConnected.get() ? nil : "broker unreachable: no connection to \(configuration.endpoint)"
            }
        return WorkerHealth(
            ready: reason == nil, reason: reason, node: configuration.hostname, queues: configuration.queues,
            poolSize: pool.size)
    }
}
