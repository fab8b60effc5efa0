import Foundation
import Logging
import Synchronization

/// The worker's side of a task (one object per task: the context a task sees is
/// also what carries it through an executor thread): runs the function, then posts
/// the result, any status update and the ack as one MULTI, so the result is stored
/// if and only if the delivery is acknowledged.
extension TaskContext {
    /// What every runner of a worker shares.
    struct Settings: Sendable {
        var stepSeconds: Double
        var statusChannel = "task_status"
        var clock: any WallClock
        var logger: Logger
        /// Whether task events go out (`-E`, or `enable_events` from remote control).
        var events: LockedBox<Bool>
        var routes = TaskRoutes()
        var metrics = WorkerMetrics()
        /// Seconds result records live unless the task says (`--result-expires`); 0: forever.
        var resultExpires = ResultRecord.expirySeconds
    }

    /// Soft and hard limits: the message's `timelimit` header wins over the task's options.
    /// Only a positive, finite limit counts (0 or none means the task's own, as in Celery);
    /// a header with any other value fails the task before it runs (`checkTimeLimitHeader`).
    var limits: (soft: Double?, hard: Double?) {
        func valid(_ v: Double?) -> Double? { v.flatMap { $0 > 0 && $0.isFinite ? $0 : nil } }
        return (
            valid(message.timeLimit.soft) ?? valid(task.options.softTimeLimit),
            valid(message.timeLimit.hard) ?? valid(task.options.timeLimit)
        )
    }

    /// The message's `timelimit` header: each limit null or finite seconds ≥ 0, else a ValueError.
    fileprivate func checkTimeLimitHeader() throws(TaskFailure) {
        let (soft, hard) = message.timeLimit
        for v in [soft, hard] {
            if let v, !(v >= 0 && v.isFinite) {
                throw TaskFailure(
                    type: "ValueError",
                    message:
                        "malformed timelimit header: \(JSON.array([soft.map(JSON.double) ?? nil, hard.map(JSON.double) ?? nil]).serialized())"
                )
            }
        }
    }

    /// When the thread picked it up, or nil while queued.
    var started: Double? { progress.withLock { $0.startedAt } }
    /// When it started and when its outcome was posted, once it ran to the end (the claim budget's sample).
    var ranFromTo: (started: Double, finished: Double)? {
        progress.withLock { p in p.startedAt.flatMap { s in p.finishedAt.map { (s, $0) } } }
    }
    /// When it started, while it runs (nil before it starts and once it finished).
    var runningSince: Double? { progress.withLock { $0.finished ? nil : $0.startedAt } }
    var isAbandoned: Bool { progress.withLock { $0.abandoned } }

    /// Mark as abandoned if it is running; false if it already finished or never started.
    /// The caller then calls `cancel()` with no lock held (it runs cancellation handlers).
    func markAbandoned() -> Bool {
        progress.withLock {
            guard $0.startedAt != nil, !$0.finished, !$0.abandoned else { return false }
            $0.abandoned = true
            return true
        }
    }

    /// Revoke a task taken to run that has not started (an executor thread or the pool's
    /// start is on its way to it): its body will not run and it posts nothing (the consumer
    /// stores it REVOKED). False once it started or finished.
    func revokeBeforeStart() -> Bool {
        progress.withLock {
            guard $0.startedAt == nil, !$0.finished, !$0.revokedBeforeStart else { return false }
            $0.revokedBeforeStart = true
            return true
        }
    }

    /// A task event body as Celery sends it (the consumer adds hostname, pid, clock).
    func event(_ type: String, _ fields: JSON = [:]) -> JSON {
        var pairs: [(key: String, value: JSON)] = [("uuid", .string(message.id))]
        pairs += fields.objectPairs ?? []
        pairs += [("timestamp", .double(settings.clock.now())), ("type", .string(type))]
        return .object(pairs)
    }

    func run() {
        var buffer: [UInt8] = []
        run(reusing: &buffer)
    }

    /// What follows a success: the chain's next step with the steps after it, and the links.
    typealias FollowUps = (next: Canvas?, rest: [JSON], links: [Canvas])

    /// The start of a run, on the thread that starts it: the start time, the soft deadline,
    /// the task-started event. Returns the start time and whether events are on; nil for a
    /// task revoked before it started (`revokeBeforeStart`), which then counts as finished.
    private func begin() -> (now: Double, events: Bool)? {
        let now = settings.clock.now()
        softDeadline = limits.soft.map { now + $0 }
        let revoked = progress.withLock {
            if $0.revokedBeforeStart {
                $0.finished = true
                return true
            }
            $0.startedAt = now
            return false
        }
        guard !revoked else { return nil }
        let events = settings.events.get()
        if events { outbox.post(.init(commands: [], event: event("task-started"))) }
        return (now, events)
    }

    /// Run a sync task on this thread, encoding the result into `buffer`'s storage;
    /// `buffer` comes back holding a written part's buffer for the next run (the
    /// executor thread keeps it).
    func run(reusing buffer: inout [UInt8]) {
        guard let (now, events) = begin() else { return }
        let outcome: Result<(result: JSON, next: FollowUps), any Error>
        do {
            // What the message asks for after the task is read first: a malformed part
            // fails the task (stored, acknowledged) instead of the worker.
            try checkTimeLimitHeader()
            let next = try followUps()
            guard case .sync(let function) = task.body else {
                throw TaskFailure(type: "RuntimeError", message: "async task \(message.task) run on a thread")
            }
            outcome = .success((try function(self), next))
        } catch {
            outcome = .failure(error)
        }
        finish(outcome, startedAt: now, events: events, reusing: &buffer)
    }

    /// Start an async task: the start is recorded here (so it counts as running at once),
    /// then its body runs as a Swift task on the global executor, holding the slot and
    /// no thread while it awaits; its outcome takes the sync path's way out, then the
    /// pool frees the slot.
    func startAsync(pool: ExecutorPool) {
        guard let (now, events) = begin() else {
            pool.finishedAsync(self)  // revoked before it started: its slot is free at once
            return
        }
        let ctx = self
        // Made and stored under the handle's lock: the task's own clearing of the handle
        // (before it posts) waits for the store, so a finished task is never left in it.
        asyncTask.withLock { slot in
            let handle = Task {
                var buffer: [UInt8] = []
                let outcome: Result<(result: JSON, next: FollowUps), any Error>
                do {
                    try ctx.checkTimeLimitHeader()
                    let next = try ctx.followUps()
                    guard case .async(let function) = ctx.task.body else {
                        throw TaskFailure(type: "RuntimeError", message: "sync task \(ctx.message.task) run as async")
                    }
                    outcome = .success((try await function(ctx), next))
                } catch {
                    outcome = .failure(error)
                }
                ctx.asyncTask.withLock { $0 = nil }  // the context no longer holds its task (no cycle)
                ctx.finish(outcome, startedAt: now, events: events, reusing: &buffer)
                pool.finishedAsync(ctx)
            }
            // Cancelled before the handle was stored: the cancel did not reach the task.
            if isCancelled || softLimitReached.load(ordering: .acquiring) { handle.cancel() }
            slot = handle
        }
    }

    /// The outcome of a run (sync or async): success, retry, replacement or failure is
    /// stored with the chord part, counted, and posted with the ack as one MULTI.
    private func finish(
        _ outcome: Result<(result: JSON, next: FollowUps), any Error>, startedAt now: Double, events: Bool,
        reusing buffer: inout [UInt8]
    ) {
        let ctx = self
        // The result is encoded straight into the part; other commands gather in `cmds`.
        var part = WriteBatch.Part(reusing: &buffer)
        var cmds: [[String]] = []
        // The event body is built only when events are on (a result's Python repr is not
        // free), and on the success path its closure is made only then too.
        var done: (() -> JSON)? = nil
        var outcomeName = "failed"
        var final: (state: TaskState, result: JSON)?
        do {
            let (result, next) = try outcome.get()
            // Celery sends the follow-ups before it stores the result, whose `children` list them.
            let followed = send(next, after: result, into: &cmds)
            let record = ResultRecord(
                taskId: message.id, state: .success, result: result, dateDone: settings.clock.now(),
                groupId: message.group, parentId: message.parentId, children: recordChildren + followed)
            store(record, ctx: ctx, into: &part)
            final = (.success, result)
            let runtime = settings.clock.now() - now
            // The result's repr cut as Celery cuts it (`resultrepr_maxsize`), in the log line
            // and the event: never a whole large result. Built only when logged or sent.
            settings.logger.info(
                "Task \(message.task)[\(message.id)] succeeded in \(String(format: "%.6f", runtime))s: \(PythonRepr.repr(result, limit: PythonRepr.resultMaxLength))"
            )
            if events {
                done = {
                    self.event(
                        "task-succeeded",
                        [
                            "result": .string(PythonRepr.repr(result, limit: PythonRepr.resultMaxLength)),
                            "runtime": .double(runtime),
                        ])
                }
            }
            outcomeName = "succeeded"
        } catch let retry as TaskRetry {
            let retried = retryOrFail(retry, ctx: ctx, into: &part)
            let retryEvent = retried.event
            done = { retryEvent }
            outcomeName = retried.failure == nil ? "retried" : "failed"
            if let failure = retried.failure { final = (.failure, failure.resultJSON) }
        } catch let replaced as TaskReplaced {
            // The workflow's result task takes this task's id and remaining chain.
            var producer = TaskProducer()
            let chain = message.embed["chain"]?.arrayValue ?? []
            _ = replaced.canvas.withResultId(message.id).listingHeaderAsChildren().emit(
                into: &cmds, producer: &producer, routes: settings.routes, parent: message, partial: nil, chain: chain,
                group: nil)
            settings.logger.info("Task \(message.task)[\(message.id)] replaced by a workflow")
            let runtime = settings.clock.now() - now
            done = { self.event("task-succeeded", ["result": "replaced", "runtime": .double(runtime)]) }
            outcomeName = "succeeded"
        } catch {
            // Retried if the task's `autoretryFor` lists it, else its FAILURE, typed as Celery
            // types an exception (AutomaticRetry.swift); an async task cancelled at its soft
            // time limit is `SoftTimeLimitExceeded` there, retried as a sync task's is.
            switch automaticRetry(for: error) {
            case .retry(let retry):
                let retried = retryOrFail(retry, ctx: ctx, into: &part)
                done = { retried.event }
                outcomeName = retried.failure == nil ? "retried" : "failed"
                if let failure = retried.failure { final = (.failure, failure.resultJSON) }
            case .failure(let failure):
                fail(failure, ctx: ctx, into: &part)
                done = { self.failedEvent(failure) }
                final = (.failure, failure.resultJSON)
            }
        }
        var chord: ChordPart? = nil
        if let final { chord = chordPart(state: final.state, result: final.result) }
        part.transact(cmds)
        // Counted before the completion is posted: once the consumer sees the delivery
        // done (no longer in flight), its task is in the metrics.
        let ranUntil = settings.clock.now()
        settings.metrics.finished(message.task, outcome: outcomeName, seconds: ranUntil - now)
        let post = progress.withLock {
            $0.finished = true
            $0.finishedAt = ranUntil
            return !$0.abandoned
        }
        if post {
            // The ack joins the batch's transaction (a chord part is acknowledged after its join).
            if chord == nil { part.acknowledge(message.deliveryTag) }
            var entry = Outbox.Entry(part: part, completes: message.deliveryTag, event: events ? done?() : nil)
            entry.chord = chord
            outbox.post(entry, recycling: &buffer)
        }
    }

    /// What runs after success, decoded and checked before the task runs: the next step
    /// of the chain (`embed.chain`, last first) with the steps after it, and the link
    /// callbacks (`embed.callbacks`); a header's chord callback (`embed.chord`) is checked
    /// too. Anything malformed is a ValueError naming where it is.
    fileprivate func followUps() throws(TaskFailure) -> FollowUps {
        let embed = message.embed
        func list(_ key: String) throws(TaskFailure) -> [JSON] {
            switch embed[key] {
            case nil, .null?: return []
            case .array(let items)?: return items
            case let other:
                throw TaskFailure(
                    type: "ValueError", message: "malformed embed.\(key): not a list but \(Signature.typeName(other))")
            }
        }
        var rest = try list("chain")
        let next = try rest.popLast().map { (step) throws(TaskFailure) in
            try Canvas(decoding: step, at: "embed.chain[-1]")
        }
        var links: [Canvas] = []
        for (i, link) in try list("callbacks").enumerated() {
            links.append(try Canvas(decoding: link, at: "embed.callbacks[\(i)]"))
        }
        if message.group != nil, let chord = embed["chord"], !chord.isNull {
            _ = try Signature(decoding: chord, at: "embed.chord")
        }
        return (next, rest, links)
    }

    /// Append the commands that send the follow-ups, each given the result, as Celery's
    /// `build_tracer` does: one link is sent as it is; of several, each group is sent on
    /// its own and the others together as one group; then the chain's next step. Returns
    /// them as the record's `children` list them.
    private func send(_ followUps: FollowUps, after result: JSON, into out: inout [[String]]) -> [JSON] {
        guard followUps.next != nil || !followUps.links.isEmpty else { return [] }
        var children: [JSON] = []
        var producer = TaskProducer()
        let routes = settings.routes
        if followUps.links.count == 1 {
            children.append(
                followUps.links[0].emitChild(
                    into: &out, producer: &producer, routes: routes, parent: message, partial: result))
        } else if !followUps.links.isEmpty {
            var plain: [Canvas] = []
            for link in followUps.links {
                if case .group = link {
                    children.append(
                        link.emitChild(
                            into: &out, producer: &producer, routes: routes, parent: message, partial: result))
                } else {
                    plain.append(link)
                }
            }
            if !plain.isEmpty {
                children.append(
                    Canvas.group(plain).emitChild(
                        into: &out, producer: &producer, routes: routes, parent: message, partial: result))
            }
        }
        if let next = followUps.next {
            children.append(
                next.emitChild(
                    into: &out, producer: &producer, routes: routes, parent: message, partial: result,
                    chain: followUps.rest))
        }
        return children
    }

    /// What the record's `children` starts with: a replaced task's chord header (its body's
    /// `embed.celeris_children`, written by the chord's join), then the tasks `send` sent.
    private var recordChildren: [JSON] {
        let embedded = message.embed["celeris_children"]?.arrayValue ?? []
        let sent = sentChildren.withLock { $0 }
        return embedded.isEmpty ? sent : embedded + sent
    }

    /// The commands that send the task's errbacks (`embed.errbacks`, Celery's `link_error`)
    /// after its FAILURE, as Celery 5.7's `_call_task_errbacks` sends those that are not
    /// local functions: `group(errbacks).apply_async((task_id,), parent_id=task_id,
    /// root_id=root_id)`, so each gets the failed task's id as its first argument. An
    /// errback that is not a signature is logged and skipped.
    private func errbackCommands() -> [[String]] {
        TaskContext.errbackCommands(for: message, routes: settings.routes, logger: settings.logger)
    }

    /// `errbackCommands()` for any failed `message` (also one that never ran: past its hard
    /// time limit, or not registered).
    static func errbackCommands(for message: TaskMessage, routes: TaskRoutes, logger: Logger) -> [[String]] {
        guard let items = message.embed["errbacks"]?.arrayValue, !items.isEmpty else { return [] }
        var errbacks: [Canvas] = []
        for (i, item) in items.enumerated() {
            do {
                errbacks.append(try Canvas(decoding: item, at: "embed.errbacks[\(i)]"))
            } catch {
                logger.error("Task \(message.task)[\(message.id)]: errback not sent: \(error.description)")
            }
        }
        guard !errbacks.isEmpty else { return [] }
        var out: [[String]] = []
        var producer = TaskProducer()
        _ = Canvas.group(errbacks).emitChild(
            into: &out, producer: &producer, routes: routes, parent: message, partial: .string(message.id))
        return out
    }

    /// A chord header's final state, to count into its chord (the ack waits for it).
    private func chordPart(state: TaskState, result: JSON) -> ChordPart? {
        guard let gid = message.group, let chord = message.embed["chord"], let callback = Signature(json: chord) else {
            return nil
        }
        let encoded = JSON.array([1, .string(message.id), .string(state.rawValue), result]).serialized()
        return ChordPart(
            groupId: gid, taskId: message.id, groupIndex: message.groupIndex, encoded: encoded, callback: callback,
            header: message)
    }

    /// SETEX + PUBLISH of the record (unless results are ignored), then the status update.
    private func store(_ record: ResultRecord, ctx: TaskContext, into part: inout WriteBatch.Part) {
        if !ignoresResult { part.store(record, expires: resultExpiry) }
        part.transact(statusCommands(record, ctx: ctx))
    }

    private var ignoresResult: Bool { message.ignoreResult || task.options.ignoreResult }

    /// The tutorial's status update on the task's completion, when the task set one.
    private func statusCommands(_ record: ResultRecord, ctx: TaskContext) -> [[String]] {
        var cmds: [[String]] = []
        var fields = ctx.completionFields
        if record.state == .failure, let failure = record.result["exc_type"]?.stringValue {
            fields = (fields ?? [:]).setting("error", .string(TaskFailureText.text(record.result, type: failure)))
        }
        if let fields {
            cmds.append(["PUBLISH", ctx.statusChannel, ctx.statusUpdate(fields, state: record.state).serialized()])
        }
        return cmds
    }

    func failedEvent(_ failure: TaskFailure, type: String = "task-failed") -> JSON {
        event(
            type,
            ["exception": .string(failure.description), "traceback": .string(failure.traceback(task: message.task))])
    }

    private func fail(_ failure: TaskFailure, ctx: TaskContext, into part: inout WriteBatch.Part) {
        settings.logger.error(
            "Task \(message.task)[\(message.id)] raised unexpected: \(PythonRepr.truncated(failure.description))")
        let record = ResultRecord(
            taskId: message.id, state: .failure, result: failure.resultJSON,
            traceback: failure.traceback(task: message.task),
            dateDone: settings.clock.now(), groupId: message.group, parentId: message.parentId,
            children: recordChildren)
        store(record, ctx: ctx, into: &part)
        // Then its errbacks, as Celery's `mark_as_failure` (not on a retry).
        part.transact(errbackCommands())
    }

    /// Celery's `Task.retry`: the same task id goes back on its queue with
    /// `retries + 1` and an ETA, the result shows RETRY; past `max_retries` the cause is the FAILURE.
    private func retryOrFail(_ retry: TaskRetry, ctx: TaskContext, into part: inout WriteBatch.Part) -> (
        event: JSON, failure: TaskFailure?
    ) {
        let cause = retry.cause ?? TaskFailure(type: "Retry", message: "Retry requested", module: "celery.exceptions")
        guard message.retries < task.options.maxRetries else {
            let exhausted =
                retry.cause
                ?? TaskFailure(
                    type: "MaxRetriesExceededError",
                    message:
                        "Can't retry \(message.task)[\(message.id)] args:\(message.argsRepr) kwargs:\(message.kwargsRepr)",
                    module: "celery.exceptions")
            fail(exhausted, ctx: ctx, into: &part)
            return (failedEvent(exhausted), exhausted)
        }
        if let countdown = retry.countdown, !countdown.isFinite {
            let invalid = TaskFailure(
                type: "ValueError", message: "retry countdown must be a finite number of seconds, got \(countdown)")
            fail(invalid, ctx: ctx, into: &part)
            return (failedEvent(invalid), invalid)
        }
        let delay = TaskContext.boundedCountdown(retry.countdown ?? task.options.backoff(retries: message.retries))
        var next = message
        next.retries += 1
        next.eta = CeleryTime.isoformat(settings.clock.now() + delay)
        next.deliveryTag = TaskMessage.newId()
        settings.logger.info(
            "Task \(message.task)[\(message.id)] retry \(next.retries)/\(task.options.maxRetries) in \(String(format: "%.3f", delay))s: \(PythonRepr.truncated(cause.description))"
        )
        let record = ResultRecord(
            taskId: message.id, state: .retry, result: cause.resultJSON, traceback: cause.traceback(task: message.task),
            groupId: message.group, parentId: message.parentId, children: recordChildren)
        var producer = TaskProducer()
        part.transact(producer.sendCommands(for: next).filter { $0.first == "LPUSH" })
        store(record, ctx: ctx, into: &part)
        return (failedEvent(cause, type: "task-retried"), nil)
    }
}
