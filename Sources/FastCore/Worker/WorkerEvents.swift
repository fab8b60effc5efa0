import Foundation

/// Celery's event stream for one worker: a Lamport clock, task events waiting
/// to go out as one `task.multi` batch, and the heartbeat schedule.
struct WorkerEvents {
    static let exchange = "celeryev"
    static let heartbeatSeconds = 2.0
    var clock = 0
    var pending: [JSON] = []
    var nextHeartbeat = 0.0
    var online = false

    /// Prefix an event with hostname, utcoffset, pid and the next clock value, as Celery does.
    mutating func stamp(_ event: JSON, hostname: String) -> JSON {
        clock += 1
        let head: [(key: String, value: JSON)] = [
            ("hostname", .string(hostname)), ("utcoffset", .double(0)),
            ("pid", .int(Int64(ProcessInfo.processInfo.processIdentifier))), ("clock", .int(Int64(clock))),
        ]
        return .object(head + (event.objectPairs ?? []))
    }

    /// PUBLISH of an event (or a `task.multi` batch) on kombu's fanout channel.
    static func publish(_ body: JSON, routingKey: String, hostname: String, db: Int) -> [String] {
        [
            "PUBLISH", KombuEnvelope.fanoutChannel(db: db, exchange: exchange, routingKey: routingKey),
            KombuEnvelope.make(
                body: body, headers: ["hostname": .string(hostname)], exchange: exchange, routingKey: routingKey),
        ]
    }

    /// The writes of one turn: worker-online once, pending task events as one
    /// `task.multi`, a heartbeat every `heartbeatSeconds`. `workerEvent` makes a
    /// worker event's body of a type.
    mutating func commands(now: Double, hostname node: String, db: Int, workerEvent: (String) -> JSON) -> [[String]] {
        var out: [[String]] = []
        if !online {
            online = true
            out.append(
                Self.publish(
                    stamp(workerEvent("worker-online"), hostname: node), routingKey: "worker.online", hostname: node,
                    db: db))
        }
        if !pending.isEmpty {
            var batch: [JSON] = []
            for event in pending { batch.append(stamp(event, hostname: node)) }
            pending.removeAll()
            out.append(Self.publish(.array(batch), routingKey: "task.multi", hostname: node, db: db))
        }
        if now >= nextHeartbeat {
            nextHeartbeat = now + Self.heartbeatSeconds
            out.append(
                Self.publish(
                    stamp(workerEvent("worker-heartbeat"), hostname: node), routingKey: "worker.heartbeat",
                    hostname: node, db: db))
        }
        return out
    }

    /// The system's 1, 5 and 15 minute load averages.
    static func loadAverage() -> JSON {
        var l = [Double](repeating: 0, count: 3)
        _ = getloadavg(&l, 3)
        return .array(l.map { .double(($0 * 100).rounded() / 100) })
    }
}
