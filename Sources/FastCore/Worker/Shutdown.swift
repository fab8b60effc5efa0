import Foundation

/// Stopping (Celery's warm and cold shutdown): warm gives back everything claimed but
/// not started and lets what runs finish; cold gives back everything held, running
/// tasks included, and leaves at once. A give-back that fails (Redis unreachable) is
/// tried again at the next turn; the loop's wait paces it.
extension Consumer {
    /// Warm stop: give back everything claimed but not started.
    func returnUnstarted() {
        let queued = pool.takeQueued().map(\.message.deliveryTag)
        let waiting = schedule.takeAll()
        let ahead = takeClaimedAhead()
        let tags = queued + waiting + ahead.map(\.tag)
        guard giveBack(tags) else {
            // Tried again in a moment (the loop's wait paces it); nothing held starts before then.
            giveBackAt = clock.now() + Self.giveBackRetrySeconds
            fetcher.restore(ahead)
            for tag in queued { if let h = held[tag] { schedule(h, at: giveBackAt) } }
            for tag in waiting { if let h = held[tag] { schedule(h, at: max(h.due ?? 0, giveBackAt)) } }
            return
        }
        unstartedReturned = true
        if !tags.isEmpty { logger.info("warm shutdown: returned \(tags.count) unstarted message(s) to their queues") }
    }

    /// How long a failed warm give-back waits before the next try.
    static let giveBackRetrySeconds = 0.2

    /// Cold stop: give back everything held, running tasks included (one connection attempt
    /// now, even if the last one failed moments ago).
    func leave(returning tags: [String]) {
        allowReconnectNow()
        _ = pool.takeQueued()
        // Running async tasks are cancelled (their writes dropped); sync ones cannot be stopped.
        for h in held.values where h.runsAsync && h.started != nil { pool.abandon(h) }
        var rest = outbox.take(waitingUpTo: 0)
        write(&rest)
        let pending = tags.filter { held[$0] != nil } + takeClaimedAhead().map(\.tag)
        if giveBack(pending), !pending.isEmpty {
            logger.warning(
                "cold shutdown: returned \(pending.count) message(s), running ones included, to their queues")
        }
    }

    /// worker-offline on the way out.
    func sayGoodbye() {
        guard runnerSettings.events.get(), events.online, let r = settledConnection() else { return }
        let node = configuration.hostname
        let ev = events.stamp(workerEvent("worker-offline"), hostname: node)
        _ = try? r.pipeline([
            WorkerEvents.publish(ev, routingKey: "worker.offline", hostname: node, db: configuration.endpoint.db)
        ])
    }

    /// Deliveries claimed ahead and not started (shutdown gives them back).
    private func takeClaimedAhead() -> [Delivery] {
        settle()
        if pipeline.claim.hasUnrecorded { writeOwn() }  // recorded first: giving back reads `unacked`
        return fetcher.takeClaimed()
    }

    /// Restore tags to their queues; true on success (or nothing to do).
    private func giveBack(_ tags: [String]) -> Bool {
        guard !tags.isEmpty else { return true }
        writeOwn()
        guard ensureConnected(), let r = settledConnection() else { return false }
        do {
            try DeliveryRestore().returnDeliveries(tags, on: r)
            for tag in tags { held[tag] = nil }
            return true
        } catch {
            dropConnection(error)
            return false
        }
    }
}
