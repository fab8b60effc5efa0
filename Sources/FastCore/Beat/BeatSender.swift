/// Sends due times through `BeatScripts.send`, pipelined: up to `batchLimit` script calls per
/// round trip. Each message is written at send time from the entry's `BeatEnvelope` template
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
        /// Sent as task `taskId` at `sentAt` (ms, Redis time).
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

    /// Script calls per round trip at most.
    static let batchLimit = 512

    let id: String
    /// The connection `sha` was loaded on (nil: load before the next batch).
    private weak var loadedOn: RedisConnection?
    private var sha = ""

    init(id: String) { self.id = id }

    /// Run `requests` in order, `batchLimit` per round trip; `now` gives the send time (ms,
    /// Redis time) of each batch. Stops after a batch in which the lease was found lost (the
    /// outcomes returned are then fewer than the requests). A Redis error that is not one call's reply throws.
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

    /// One round trip: the batch's script calls pipelined; calls Redis refused with NOSCRIPT
    /// (its scripts flushed) are run again, in order, once the script is loaded.
    private func sendBatch(_ batch: ArraySlice<Request>, on redis: RedisConnection, sentAt: Int64) throws(RedisError)
        -> [Outcome]
    {
        if loadedOn !== redis {
            sha = try BeatScripts.send.load(on: redis)
            loadedOn = redis
        }
        var calls: [(keys: [String], args: [String], taskId: String?)] = []
        calls.reserveCapacity(batch.count)
        for request in batch { calls.append(call(for: request, sentAt: sentAt)) }
        let replies = try redis.pipeline(calls.map { BeatScripts.send.command(sha: sha, keys: $0.keys, args: $0.args) })
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(batch.count)
        for (i, reply) in replies.enumerated() {
            var r = reply
            if let e = r.errorMessage, e.hasPrefix("NOSCRIPT") {
                sha = try BeatScripts.send.load(on: redis)
                r = try redis.pipeline([BeatScripts.send.command(sha: sha, keys: calls[i].keys, args: calls[i].args)])[
                    0]
            }
            // An error reply is this call's alone (the pipeline's replies are read one by one).
            if let e = r.errorMessage {
                outcomes.append(.failed(e))
                continue
            }
            switch r.integer ?? .min {
            case 1: outcomes.append(calls[i].taskId.map { .sent(taskId: $0, sentAt: sentAt) } ?? .recorded)
            case 0: outcomes.append(.handled)
            case -1: outcomes.append(.notLeader)
            default: outcomes.append(.failed("send script returned \(r)"))
            }
        }
        return outcomes
    }

    /// The script's keys and arguments for `request`, its message built now.
    private func call(for request: Request, sentAt: Int64) -> (keys: [String], args: [String], taskId: String?) {
        let entry = request.entry
        let queue = entry.options.queue ?? "celery"
        let priority = entry.options.priority ?? 0
        var envelope = ""
        var taskId: String?
        if request.send {
            let id = TaskMessage.newId()
            envelope = String(decoding: request.template.bytes(id: id, sentAt: Double(sentAt) / 1000), as: UTF8.self)
            taskId = id
        }
        let keys = [
            BeatKeys.leader, BeatKeys.entry(entry.name), QueueKeys.listKey(queue: queue, priority: priority),
            QueueKeys.bindingKey(exchange: queue),
        ]
        let args = [
            id, String(request.due), envelope, String(sentAt), taskId ?? "",
            QueueKeys.bindingMember(routingKey: queue, queue: queue), String(request.next),
        ]
        return (keys, args, taskId)
    }
}
