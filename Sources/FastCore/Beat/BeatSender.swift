/// Sends due times through `BeatScripts.sendBatch`: up to `batchLimit` entries per script call
/// (one round trip). Each message is written at send time from the entry's `BeatEnvelope` template
/// (byte-equal to `BeatMessage`; `sentAt` = Redis-clock now, a fresh task id), so a scheduler
/// sends exactly what Celery beat 5.7 sends; each call
/// answers for its step (sent, recorded, already handled, not the leader).
///
///     let sender = BeatSender(id: config.id)
///     let outcomes = try sender.send(requests, on: redis) { nowMs() }
final class BeatSender {
    /// One step of one entry: send (or, `send: false`, only record) due time `due`, and write
    /// `next` as the entry's next due time.
    struct Request {
        /// The entry's compiled envelope (kept with the tracked entry).
        let template: BeatEnvelope
        var entry: ScheduleEntry { template.entry }
        let due: Int64
        let next: Int64
        let send: Bool

        init(template: BeatEnvelope, due: Int64, next: Int64, send: Bool) {
            self.template = template
            self.due = due
            self.next = next
            self.send = send
        }

        /// A request with a template made for it (tests; the scheduler keeps one per entry).
        init(entry: ScheduleEntry, due: Int64, next: Int64, send: Bool) {
            self.init(template: BeatEnvelope(entry: entry), due: due, next: next, send: send)
        }
    }

    /// What the script did with a request.
    enum Outcome: Equatable {
        /// Sent as task `taskId` at `sentAt` (ms, Redis's `TIME` in the script; the scheduler's now under a `ManualClock`).
        case sent(taskId: String, sentAt: Int64)
        /// Recorded handled without a message.
        case recorded
        /// Already handled: the entry's recorded due time is this one or later (nothing written).
        case handled
        /// This scheduler does not hold the lease (nothing written): leadership is lost.
        case notLeader
        /// The script failed for this entry (Redis's error reply): the other calls are not affected.
        case failed(String)
    }

    /// Entries per script call (one call, one round trip, per batch) at most.
    static let batchLimit = 256

    let id: String
    /// Whether `sent_at` is stamped with Redis's `TIME` in the script (the system clock); false
    /// under a `ManualClock`, whose now (the `now` given to `send`) stays the authority.
    let stampsRedisTime: Bool
    /// The connection `sha` was loaded on (nil: load before the next batch).
    private weak var loadedOn: RedisConnection?
    private var sha = ""

    init(id: String, stampsRedisTime: Bool = true) {
        self.id = id
        self.stampsRedisTime = stampsRedisTime
    }

    /// One batch's script call, built.
    private struct Prepared {
        let count: Int
        let keys: [String]
        let args: [String]
        let taskIds: [String?]
    }

    /// Run `requests` in order, `batchLimit` per script call, pipelined: batch k + 1 is built
    /// and written while Redis runs batch k. `now` gives the scheduler's send time estimate (ms,
    /// Redis time) of each batch, for the messages' `expires`. Returns early (fewer outcomes)
    /// after a batch in which the lease was found lost (then `.notLeader` is among them), or
    /// when `pauseWhen()` is true before the next batch is sent (the caller renews the lease
    /// and sends the rest). A Redis error that is not one entry's reply throws.
    func send(
        _ requests: [Request], on redis: RedisConnection, pauseWhen: () -> Bool = { false }, now: () -> Int64
    ) throws(RedisError) -> [Outcome] {
        guard !requests.isEmpty else { return [] }
        if loadedOn !== redis {
            sha = try BeatScripts.sendBatch.load(on: redis)
            loadedOn = redis
        }
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(requests.count)
        var start = 0
        var current = prepare(requests[0..<min(Self.batchLimit, requests.count)], sentAt: now())
        try redis.append([command(current)])
        try redis.flush()
        // The reply of `current` when it was read already (it was the batch in flight behind a NOSCRIPT).
        var currentReply: RedisValue?
        while true {
            let nextStart = start + current.count
            var next: Prepared?
            var nextSent = false
            if nextStart < requests.count && !pauseWhen() {
                let built = prepare(
                    requests[nextStart..<min(nextStart + Self.batchLimit, requests.count)], sentAt: now())
                try redis.append([command(built)])
                try redis.flush()
                next = built
                nextSent = true
            }
            var reply: RedisValue
            if let known = currentReply { reply = known } else { reply = try redis.read() }
            var nextReply: RedisValue?
            if Self.isNoScript(reply) {
                // Redis lost the script (flushed or restarted): read the reply of the batch in
                // flight behind it first, then run this batch again, and that one too if refused.
                if nextSent { nextReply = try redis.read() }
                sha = try BeatScripts.sendBatch.load(on: redis)
                reply = try redis.pipeline([command(current)])[0]
                if let r = nextReply, Self.isNoScript(r) {
                    nextReply = nil
                    nextSent = false
                }
            }
            let part = self.outcomes(of: reply, for: current)
            outcomes += part
            if part.contains(.notLeader) {
                if nextSent && nextReply == nil { _ = try redis.read() }
                break
            }
            guard let next else { break }
            if !nextSent {
                try redis.append([command(next)])
                try redis.flush()
            }
            current = next
            currentReply = nextReply
            start = nextStart
        }
        return outcomes
    }

    private static func isNoScript(_ reply: RedisValue) -> Bool {
        reply.errorMessage.map { $0.hasPrefix("NOSCRIPT") } ?? false
    }

    private func command(_ prepared: Prepared) -> [String] {
        BeatScripts.sendBatch.command(sha: sha, keys: prepared.keys, args: prepared.args)
    }

    /// The batch's script call: keys and arguments, each message written now from its template.
    private func prepare(_ batch: ArraySlice<Request>, sentAt: Int64) -> Prepared {
        var keys = [BeatKeys.leader]
        keys.reserveCapacity(1 + 3 * batch.count)
        var args = [id, stampsRedisTime ? "" : String(sentAt)]
        args.reserveCapacity(2 + 5 * batch.count)
        var taskIds: [String?] = []
        taskIds.reserveCapacity(batch.count)
        let sentAtSeconds = Double(sentAt) / 1000
        for request in batch {
            let entry = request.entry
            let queue = entry.options.queue ?? "celery"
            let priority = entry.options.priority ?? 0
            var envelope = ""
            var taskId: String?
            if request.send {
                let id = TaskMessage.newId()
                envelope = String(decoding: request.template.bytes(id: id, sentAt: sentAtSeconds), as: UTF8.self)
                taskId = id
            }
            keys += [
                BeatKeys.entry(entry.name), QueueKeys.listKey(queue: queue, priority: priority),
                QueueKeys.bindingKey(exchange: queue),
            ]
            args += [
                String(request.due), envelope, taskId ?? "", QueueKeys.bindingMember(routingKey: queue, queue: queue),
                String(request.next),
            ]
            taskIds.append(taskId)
        }
        return Prepared(count: batch.count, keys: keys, args: args, taskIds: taskIds)
    }

    /// The outcomes of a batch from the script's reply. An error of the whole call (not one
    /// entry's: those are in the reply) fails every entry of the batch alone (each backs off).
    private func outcomes(of reply: RedisValue, for batch: Prepared) -> [Outcome] {
        if let e = reply.errorMessage { return Array(repeating: .failed(e), count: batch.count) }
        guard let items = reply.elements, let first = items.first else {
            return Array(repeating: .failed("send script returned \(reply)"), count: batch.count)
        }
        if first.integer == -1 { return Array(repeating: .notLeader, count: batch.count) }
        guard let stamped = first.text.flatMap({ Int64($0) }), items.count == batch.count + 1 else {
            return Array(repeating: .failed("send script returned \(reply)"), count: batch.count)
        }
        let taskIds = batch.taskIds
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(batch.count)
        for (i, item) in items.dropFirst().enumerated() {
            if let e = item.text {
                outcomes.append(.failed(e))
                continue
            }
            switch item.integer ?? .min {
            case 1: outcomes.append(taskIds[i].map { .sent(taskId: $0, sentAt: stamped) } ?? .recorded)
            case 0: outcomes.append(.handled)
            default: outcomes.append(.failed("send script returned \(item)"))
            }
        }
        return outcomes
    }
}
