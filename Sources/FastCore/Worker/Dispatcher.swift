import Foundation

/// Dispatch (Sidekiq's processor hand-off): a claimed delivery is decoded into a
/// runner (a finished task's, when `Recycler` has one), held, and started now, or
/// scheduled for its ETA or for when its task's rate limit allows; a delivery that
/// cannot run ends here with its result stored and its ack in the same transaction
/// (unregistered task, expired, revoked, past its hard time limit), or goes to the
/// dead-letter list (undecodable).
extension Consumer {
    func dispatch(_ d: Delivery, now: Double) {
        // Returned to its queue while this worker still runs it (by a peer with a shorter
        // visibility timeout than our lease renewal allows for) and claimed back here:
        // the claim re-recorded it in `unacked`, and the running task's ack clears that.
        guard held[d.tag] == nil else {
            logger.warning("delivery \(d.tag) claimed again while it is still held here; not run twice")
            return
        }
        // Decoded into a finished task's runner when one is spare (no new objects).
        let spareRunner = recycler.popRunner()
        let message: TaskMessage
        do {
            if let spareRunner {
                try spareRunner.message.decode(
                    d.raw, queue: d.queue, deliveryTag: d.tag, maxBytes: configuration.maxMessageBytes)
                message = spareRunner.message
            } else {
                message = try TaskMessage.decode(
                    d.raw, queue: d.queue, deliveryTag: d.tag, maxBytes: configuration.maxMessageBytes)
            }
        } catch {
            if let spareRunner { recycler.putBack(spareRunner) }
            deadLetter(d, reason: error.reason)
            return
        }
        metrics.received(message.task)
        guard let task = registry.task(named: message.task) else {
            if let spareRunner { recycler.putBack(spareRunner) }
            logger.error("Received unregistered task of type '\(message.task)' (id \(message.id)); stored as FAILURE")
            let failure = TaskFailure(
                type: "NotRegistered", arguments: [.string(message.task)], module: "celery.exceptions")
            finishWithoutRunning(message, .failure, failure)
            return
        }
        let eta = message.eta
        let h =
            spareRunner?.reuse(for: task)
            ?? TaskContext(message: message, task: task, outbox: outbox, settings: runnerSettings)
        if runnerSettings.events.get() {
            let message = h.message
            events.pending.append(
                h.event(
                    "task-received",
                    [
                        "name": .string(message.task), "args": .string(message.argsRepr),
                        "kwargs": .string(message.kwargsRepr), "root_id": message.rootId.map(JSON.string) ?? nil,
                        "parent_id": message.parentId.map(JSON.string) ?? nil, "retries": .int(Int64(message.retries)),
                        "eta": message.eta.map(JSON.string) ?? nil, "expires": message.expires.map(JSON.string) ?? nil,
                    ]))
        }
        held[d.tag] = h
        if h.limits.hard != nil { hardLimits.watch(d.tag) }
        if h.runsAsync && h.limits.soft != nil { softLimits.watch(d.tag) }
        if let eta = eta.flatMap(CeleryTime.parse), eta > now {
            schedule(h, at: eta)
        } else {
            start(h, now: now)
        }
    }

    /// Run now, or schedule for when the task's rate limit allows; expired tasks end REVOKED.
    func start(_ h: TaskContext, now: Double) {
        if revoked.contains(h.message.id) {
            held[h.message.deliveryTag] = nil
            finishRevoked(h, terminated: false)
            return
        }
        if let expires = h.message.expires.flatMap(CeleryTime.parse), expires <= now {
            let m = h.message
            logger.info("Task \(m.task)[\(m.id)] expired at \(m.expires ?? ""); not run, stored as REVOKED")
            held[m.deliveryTag] = nil
            finishWithoutRunning(
                m, .revoked, TaskFailure(type: "TaskRevokedError", message: "expired", module: "celery.exceptions"))
            return
        }
        let wait = limiter.reserve(h.message.task, now: now)
        if wait > 0 {
            schedule(h, at: now + wait)
        } else {
            startedThisTurn.append(h)
        }
    }

    func schedule(_ h: TaskContext, at due: Double) {
        h.due = due
        schedule.add(h.message.deliveryTag, due: due)
    }

    /// Start every scheduled delivery whose time has come.
    func startDue(_ now: Double) {
        while let tag = schedule.popDue(now: now) {
            guard let h = held[tag] else { continue }
            h.due = nil
            start(h, now: now)
        }
    }

    /// Hand this turn's started tasks to the pool in one go (one lock, one wake-up
    /// round, instead of a condition signal per task).
    func submitStarted() {
        guard !startedThisTurn.isEmpty else { return }
        pool.submit(contentsOf: startedThisTurn)
        startedThisTurn.removeAll(keepingCapacity: true)
    }

    /// Abandon tasks past their hard time limit: FAILURE `TimeLimitExceeded`, slot replaced.
    func enforceHardLimits(_ now: Double) {
        let expired = hardLimits.expired(now: now, held: held, pool: pool)
        guard !expired.isEmpty else { return }
        for (tag, h, hard) in expired {
            let m = h.message
            logger.error("Hard time limit (\(hard)s) exceeded for \(m.task)[\(m.id)]; slot replaced")
            held[tag] = nil
            finishWithoutRunning(
                m, .failure,
                TaskFailure(type: "TimeLimitExceeded", arguments: [.double(hard)], module: "billiard.exceptions"))
        }
        let stuck = pool.abandonedThreads
        metrics.abandonedThreads(stuck)
        let limit = configuration.maxAbandonedThreads
        guard limit > 0, stuck >= limit, phase.get() == .consuming else { return }
        // Celery recycles a child that cannot be stopped; a thread cannot be killed, so the
        // worker restarts itself: warm, its supervisor starting it again at the exit status.
        logger.error(
            "\(stuck) thread(s) stuck in tasks past their hard time limit (--max-abandoned-threads \(limit)): restarting warm, exit status \(Self.abandonedThreadsExitStatus)"
        )
        stoppedForAbandonedThreads.set(true)
        stop()
    }

    /// Cancel async tasks past their soft time limit (their bodies then fail with
    /// `SoftTimeLimitExceeded`, or catch the cancellation).
    func enforceSoftLimits(_ now: Double) {
        softLimits.cancelExpired(now: now, held: held)
    }

    /// Store a final state for a task that will not run, and acknowledge it.
    func finishWithoutRunning(_ m: TaskMessage, _ state: TaskState, _ failure: TaskFailure) {
        metrics.finished(m.task, outcome: state == .revoked ? "revoked" : "failed", seconds: nil)
        let record = ResultRecord(
            taskId: m.id, state: state, result: failure.resultJSON, dateDone: clock.now(), groupId: m.group,
            parentId: m.parentId, expires: resultExpiry(of: m.task))
        // A FAILURE sends the task's errbacks (`link_error`), as Celery's `mark_as_failure`.
        let errbacks =
            state == .failure
            ? TaskContext.errbackCommands(for: m, routes: configuration.routes, logger: logger) : []
        pipeline.own +=
            [["MULTI"]] + record.storeCommands() + errbacks + DeliveryClaim.ackCommands(tag: m.deliveryTag) + [["EXEC"]]
    }

    /// Seconds the records of task `name` live: its `resultExpires` when valid, else the
    /// worker's `--result-expires` (as a run's records, `TaskContext.resultExpiry`).
    func resultExpiry(of name: String) -> Int {
        registry.task(named: name)?.options.resultExpires.flatMap(ResultRecord.expiry(seconds:))
            ?? configuration.resultExpires
    }

    /// Move an undecodable delivery to the dead-letter list with the reason, acknowledged in the same transaction.
    func deadLetter(_ d: Delivery, reason: String) {
        logger.error("poison message from \(d.queue) (tag \(d.tag)) moved to \(configuration.deadLetterKey): \(reason)")
        let entry: JSON = [
            "reason": .string(reason), "queue": .string(d.queue), "delivery_tag": .string(d.tag),
            "worker": .string(configuration.hostname), "date": .string(CeleryTime.isoformat(clock.now())),
            "message": .string(String(decoding: d.raw, as: UTF8.self)),
        ]
        pipeline.own +=
            [["MULTI"], ["LPUSH", configuration.deadLetterKey, entry.serialized()]]
            + DeliveryClaim.ackCommands(tag: d.tag) + [["EXEC"]]
    }
}
