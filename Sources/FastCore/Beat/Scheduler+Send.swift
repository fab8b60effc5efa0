import Dispatch
import Foundation

/// The leader's sends: every entry whose next due time has come is planned (`DuePlan`), and the
/// plans' steps go through `BeatSender` in pipelined batches.
extension Scheduler {
    /// Plan and send everything due at now. After the sends each entry's state follows the
    /// outcomes: sent or recorded steps move its recorded due time; a step found already handled
    /// (another scheduler sent it) re-reads the recorded due time; a lost lease stops the turn.
    func sendDue(redis: RedisConnection) throws {
        let now = nowMs()
        guard let startedAt else { return }
        var requests: [BeatSender.Request] = []
        var planned: [(name: String, next: Int64, steps: Range<Int>)] = []
        while let top = heap.top, top.due <= now {
            _ = heap.pop()
            guard let tracked = entries[top.name], tracked.next == top.due, let handled = tracked.handled else {
                continue
            }
            let plan: DuePlan
            do {
                plan = try DuePlan.plan(
                    schedule: tracked.due, handled: handled, now: now, startedAt: max(startedAt, tracked.seenFrom),
                    catchUp: tracked.entry.catchUp)
            } catch {
                drop(top.name, because: error)
                continue
            }
            let first = requests.count
            for (i, step) in plan.steps.enumerated() {
                let after = i + 1 < plan.steps.count ? plan.steps[i + 1].due : plan.next
                switch step {
                case .send(let due):
                    requests.append(.init(template: tracked.template, due: due, next: after, send: true))
                case .skip(let due):
                    requests.append(.init(template: tracked.template, due: due, next: after, send: false))
                }
            }
            planned.append((top.name, plan.next, first..<requests.count))
        }
        guard !planned.isEmpty else { return }
        var outcomes: [BeatSender.Outcome] = []
        do {
            // Batch by batch, renewing the lease when due in between: a long catch-up must not
            // outlast the lease (a lease found lost stops the sends: fewer outcomes).
            var start = 0
            while start < requests.count {
                if start > 0, DispatchTime.now().uptimeNanoseconds >= nextLeaseCheck {
                    try checkLease(redis: redis)
                    if !lease.isLeader { break }
                }
                let part = try sender.send(
                    Array(requests[start...]), on: redis,
                    pauseWhen: { DispatchTime.now().uptimeNanoseconds >= self.nextLeaseCheck }
                ) { nowMs() }
                outcomes += part
                if part.isEmpty || part.contains(.notLeader) { break }
                start += part.count
            }
        } catch {
            // What was sent is recorded in Redis: read it again once reconnected.
            synced = false
            throw error
        }
        var refetch: [String] = []
        for item in planned {
            guard var tracked = entries[item.name] else { continue }
            var fenced = false
            var complete = true
            var failure: String?
            for i in item.steps where failure == nil {
                guard i < outcomes.count else {
                    complete = false
                    break
                }
                let request = requests[i]
                switch outcomes[i] {
                case .sent(_, let sentAt):
                    tracked.handled = request.due
                    metrics.sent(latenessSeconds: Double(sentAt - request.due) / 1000)
                case .recorded:
                    tracked.handled = request.due
                    metrics.skipped()
                case .handled:
                    // Recorded as this due time or later: at least this one is handled, even when
                    // the recorded value cannot be read back (the plan then moves on).
                    tracked.handled = max(tracked.handled ?? request.due, request.due)
                    fenced = true
                    metrics.fenced()
                case .notLeader:
                    complete = false
                case .failed(let message):
                    failure = message
                }
            }
            if let failure {
                // This entry alone backs off; what it sent before the failure is recorded.
                tracked.failures += 1
                let delay = Int64(1000) << Int64(min(tracked.failures - 1, 6))
                tracked.next = now + min(delay, 60_000)
                entries[item.name] = tracked
                heap.push(due: tracked.next, name: item.name)
                metrics.sendError()
                logger.error(
                    "beat: entry \(item.name) failed to send: \(failure); retrying in \(min(delay, 60_000)) ms")
                continue
            }
            tracked.failures = 0
            if complete && !fenced {
                tracked.next = item.next
            } else if fenced {
                refetch.append(item.name)
            }
            entries[item.name] = tracked
            if complete && !fenced { heap.push(due: tracked.next, name: item.name) }
        }
        if outcomes.count < requests.count || outcomes.contains(.notLeader) {
            lease.lost()
            synced = false
            logger.warning("beat \(id) lost the leadership (the send script found another leader)")
            return
        }
        if !refetch.isEmpty { try refetchHandled(refetch, redis: redis) }
    }

    /// Entries whose send was fenced: take the recorded due time as handled and plan from it.
    private func refetchHandled(_ names: [String], redis: RedisConnection) throws {
        for chunk in chunks(names) {
            let replies = try redis.pipeline(chunk.map { ["HGET", BeatKeys.entry($0), BeatKeys.Field.due] })
            for (name, reply) in zip(chunk, replies) {
                guard var tracked = entries[name] else { continue }
                if let due = reply.text.flatMap({ Int64($0) }) { tracked.handled = max(tracked.handled ?? due, due) }
                entries[name] = tracked
                guard let handled = tracked.handled, let next = nextDue(name, after: handled) else { continue }
                tracked.next = next
                entries[name] = tracked
                heap.push(due: next, name: name)
            }
        }
    }
}
