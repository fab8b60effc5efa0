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

    /// Run `requests` in order, `batchLimit` per script call; `now` gives the scheduler's send
    /// time estimate (ms, Redis time) of each batch, for the messages' `expires`. Stops after a
    /// batch in which the lease was found lost (the outcomes returned are then fewer than the
    /// requests). A Redis error that is not one entry's reply throws.
    func send(_ requests: [Request], on redis: RedisConnection, now: () -> Int64) throws(RedisError) -> [Outcome] {
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(requests.count)
        var start = 0
        while start < requests.count {
            let end = min(start + Self.batchLimit, requests.count)
            let batch = try sendBatch(requests[start..<end], on: redis, sentAt: now())
            outcomes += batch
            if batch.contains(.notLeader) { break }
            start = end
        }
        return outcomes
    }

    /// One round trip: the batch in one `BeatScripts.sendBatch` call, run again once loaded
    /// when Redis refused it with NOSCRIPT (its scripts flushed).
    private func sendBatch(_ batch: ArraySlice<Request>, on redis: RedisConnection, sentAt: Int64) throws(RedisError)
        -> [Outcome]
    {
        if loadedOn !== redis {
            sha = try BeatScripts.sendBatch.load(on: redis)
            loadedOn = redis
        }
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
        var reply = try redis.pipeline([BeatScripts.sendBatch.command(sha: sha, keys: keys, args: args)])[0]
        if let e = reply.errorMessage, e.hasPrefix("NOSCRIPT") {
            sha = try BeatScripts.sendBatch.load(on: redis)
            reply = try redis.pipeline([BeatScripts.sendBatch.command(sha: sha, keys: keys, args: args)])[0]
        }
        // An error of the whole call (not one entry's: those are in the reply) fails every entry
        // of the batch alone (each backs off); the connection is kept.
        if let e = reply.errorMessage { return Array(repeating: .failed(e), count: batch.count) }
        guard let items = reply.elements, let first = items.first else {
            return Array(repeating: .failed("send script returned \(reply)"), count: batch.count)
        }
        if first.integer == -1 { return Array(repeating: .notLeader, count: batch.count) }
        guard let stamped = first.text.flatMap({ Int64($0) }), items.count == batch.count + 1 else {
            return Array(repeating: .failed("send script returned \(reply)"), count: batch.count)
        }
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
