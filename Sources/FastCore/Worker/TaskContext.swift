import Foundation
import Synchronization

/// What a running task sees: its message, its arguments, and ways to report
/// progress (`updateState`) and to publish updates for WebSocket clients. The
/// same object carries the worker's side of the task (`TaskContext+Run.swift`: its
/// delivery's schedule, start, finish and abandonment), so a claimed task is one
/// allocation, not a runner and a context.
///
///     let n = try ctx.int(0, "task_length")
///     ctx.updateState(.progress, meta: ["progress": 1])
public final class TaskContext: @unchecked Sendable {
    // Exclusivity: one user at a time (the consumer, then an executor): the run-time check is pure cost.
    /// Changed only while nothing else holds the context: the consumer decodes the next
    /// claimed message into a finished task's context (`reuse(for:)`).
    @exclusivity(unchecked) public internal(set) var message: TaskMessage
    @exclusivity(unchecked) private(set) var task: RegisteredTask
    let outbox: Outbox
    let settings: Settings
    /// When a delivery waiting for its ETA or rate limit is due (the consumer's, set and
    /// read on its thread only); nil once it is queued to run.
    @exclusivity(unchecked) var due: Double?
    /// When the soft time limit passes, if the task has one: set by the executor thread
    /// as the task starts, before the task function sees the context.
    @exclusivity(unchecked) public internal(set) var softDeadline: Double?
    /// When the task started, whether it finished, whether the pool gave up on it.
    struct Progress {
        var startedAt: Double?
        var finished = false
        /// When its outcome was posted (nil: it did not run to the end).
        var finishedAt: Double?
        var abandoned = false
        /// Revoked after the pool took it and before it started: its body never runs.
        var revokedBeforeStart = false
    }
    let progress = Mutex(Progress())
    /// Stored inline, as is the cancel flag: no allocation beyond the context's own.
    private let completion = Mutex<JSON?>(nil)
    /// Set when the worker gave up on this task (revoked with terminate, or past its hard time limit).
    private let cancelled = Atomic<Bool>(false)
    /// Whether the task's body is async (it holds a slot, not a thread, while it awaits).
    private(set) var runsAsync: Bool
    /// An async task's Swift task while it runs (cancelled by `cancel()` and at the soft limit).
    let asyncTask = Mutex<Task<Void, Never>?>(nil)
    /// Set when the worker cancelled the async task at its soft time limit.
    let softLimitReached = Atomic<Bool>(false)
    /// The tasks this run sent (`send`), as its record's `children` lists them (Celery's `request.children`).
    let sentChildren = Mutex<[JSON]>([])

    /// A claimed task, run later by `run()` on an executor thread.
    init(message: TaskMessage, task: RegisteredTask, outbox: Outbox, settings: Settings) {
        self.message = message
        self.task = task
        self.outbox = outbox
        self.settings = settings
        runsAsync = task.isAsync
    }

    /// This finished context, made ready to run `task` on the message just decoded into
    /// it: the worker's consumer recycles a context once nothing else holds it.
    ///
    ///     try spare.message.decode(raw, queue: "celery", deliveryTag: tag)
    ///     let runner = spare.reuse(for: task)
    func reuse(for task: RegisteredTask) -> TaskContext {
        self.task = task
        runsAsync = task.isAsync  // `asyncTask` is nil: an async run clears it before it posts
        softLimitReached.store(false, ordering: .relaxed)
        due = nil
        softDeadline = nil
        progress.withLock { $0 = Progress() }
        completion.withLock { $0 = nil }
        sentChildren.withLock { $0.removeAll() }
        cancelled.store(false, ordering: .relaxed)
        return self
    }

    /// Seconds `create_task` sleeps per step (worker's `--step-seconds`).
    public var stepSeconds: Double { settings.stepSeconds }
    /// The pub/sub channel WebSocket frontends fan out (`task_status`).
    public var statusChannel: String { settings.statusChannel }
    /// Where tasks this task sends are routed.
    public var routes: TaskRoutes { settings.routes }
    private var clock: any WallClock { settings.clock }

    public var taskId: String { message.id }

    /// Positional argument `index`, or keyword `name`.
    public func argument(_ index: Int, _ name: String) -> JSON? {
        if index < message.args.count { return message.args[index] }
        return message.kwargs.first(where: { $0.key == name })?.value
    }

    /// An integer argument; a missing or mistyped one is a Python-style TypeError.
    public func int(_ index: Int, _ name: String) throws(TaskFailure) -> Int64 {
        guard let v = argument(index, name) else {
            throw TaskFailure(type: "TypeError", message: "\(message.task)() missing required argument: '\(name)'")
        }
        guard let i = v.intValue else {
            throw TaskFailure(type: "TypeError", message: "'\(name)' must be an integer, not \(PythonRepr.repr(v))")
        }
        return i
    }

    /// Store a state with its meta and announce it (Celery's `update_state`).
    public func updateState(_ state: TaskState, meta: JSON) {
        guard !isCancelled else { return }
        var part = WriteBatch.Part()
        part.store(ResultRecord(taskId: message.id, state: state, result: meta), expires: resultExpiry)
        outbox.post(.init(part: part))
    }

    /// Publish a JSON update on the status channel for WebSocket clients.
    public func publishStatus(_ fields: JSON) {
        guard !isCancelled else { return }
        outbox.post(.init(commands: [["PUBLISH", statusChannel, statusUpdate(fields).serialized()]]))
    }

    /// Fields to publish on the status channel once the result is stored;
    /// the runtime adds `task_id`, `state` and `ts`.
    public func publishOnCompletion(_ fields: JSON) { completion.withLock { $0 = fields } }

    /// The completion fields set by the task, if any.
    public var completionFields: JSON? { completion.withLock { $0 } }

    /// Tell the task to stop writing and sleeping (the worker gave up on it); an async
    /// task's Swift task is cancelled.
    func cancel() {
        cancelled.store(true, ordering: .releasing)
        asyncTask.withLock { $0 }?.cancel()
    }

    /// Cancel an async task at its soft time limit: its body sees `CancellationError`,
    /// which fails it with `SoftTimeLimitExceeded` unless it catches it and returns.
    func cancelAtSoftLimit() {
        softLimitReached.store(true, ordering: .releasing)
        asyncTask.withLock { $0 }?.cancel()
    }

    /// `{"task_id", "state"?, …fields, "ts"}` as the tutorial's clients expect.
    public func statusUpdate(_ fields: JSON, state: TaskState? = nil) -> JSON {
        var pairs: [(key: String, value: JSON)] = [("task_id", .string(message.id))]
        if let state { pairs.append(("state", .string(state.rawValue))) }
        pairs += fields.objectPairs ?? []
        pairs.append(("ts", .double(clock.now())))
        return .object(pairs)
    }

    /// True once the worker has given up on this task; its writes are dropped from then on.
    public var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    /// Throws `SoftTimeLimitExceeded` once the soft time limit has passed, or
    /// `TaskRevokedError` once the task was terminated; long tasks call it between steps.
    public func checkSoftTimeLimit() throws(TaskFailure) {
        if isCancelled {
            throw TaskFailure(type: "TaskRevokedError", message: "terminated", module: "celery.exceptions")
        }
        if let softDeadline, clock.now() >= softDeadline {
            throw TaskFailure(type: "SoftTimeLimitExceeded", arguments: [], module: "billiard.exceptions")
        }
    }

    /// Sleep the executor thread for `seconds` of real time (the task's own work), checking
    /// the soft time limit, judged by the worker's clock, every 50 ms.
    public func sleep(seconds: Double) throws(TaskFailure) {
        var left = seconds
        while left > 0 {
            try checkSoftTimeLimit()
            let slice = min(left, 0.05)
            Thread.sleep(forTimeInterval: slice)
            left -= slice
        }
        try checkSoftTimeLimit()
    }

    /// Sleep `seconds` without holding a thread (an async task's own wait). Cancellable:
    /// throws `CancellationError` when the worker cancels the task (terminate, soft or
    /// hard time limit, cold shutdown).
    ///
    ///     try await ctx.sleep(seconds: 1)
    public func sleep(seconds: Double) async throws {
        try Task.checkCancellation()
        guard seconds > 0 else { return }  // NaN too
        let bounded = min(seconds, TaskContext.maxCountdown)
        try await Task.sleep(nanoseconds: UInt64(bounded * 1_000_000_000))
    }

    /// The error to throw to run again later (Celery's `self.retry`).
    ///
    ///     throw ctx.retry(after: 2, because: TaskFailure(type: "IOError", message: "busy"))
    public func retry(after countdown: Double? = nil, because cause: TaskFailure? = nil) -> TaskRetry {
        TaskRetry(countdown: countdown, cause: cause)
    }

    /// Send another task, routed by `routes` unless `queue` is given; it
    /// records this task as its parent, and this task's result record lists it in
    /// `children` (as Celery's `app.send_task` from inside a task). Returns the new task id. A `countdown` is
    /// bounded to 0...`maxCountdown`; one that is not a finite number sends it at once.
    ///
    ///     let id = ctx.send("extract_data_task", args: ["/docs/a.txt"])
    @discardableResult
    public func send(
        _ task: String, args: [JSON] = [], kwargs: [(key: String, value: JSON)] = [], queue: String? = nil,
        countdown: Double? = nil
    ) -> String {
        var m = TaskMessage(task: task, args: args, kwargs: kwargs, queue: queue ?? routes.queue(for: task) ?? "celery")
        m.parentId = message.id
        m.rootId = message.rootId ?? message.id
        if let countdown, countdown.isFinite {
            m.eta = CeleryTime.isoformat(clock.now() + TaskContext.boundedCountdown(countdown))
        }
        var producer = TaskProducer()
        outbox.post(.init(commands: producer.sendCommands(for: m)))
        sentChildren.withLock { $0.append(Canvas.childTuple(m.id)) }
        return m.id
    }

    /// The longest delay a task may ask for (`send(countdown:)`, `retry(after:)`): 100 years,
    /// so every ETA stays a date Celery's `datetime` reads.
    public static let maxCountdown: Double = 100 * 365 * 86400

    /// `seconds` within 0...`maxCountdown` (0 when not a number).
    static func boundedCountdown(_ seconds: Double) -> Double {
        seconds.isNaN ? 0 : min(max(0, seconds), maxCountdown)
    }

    /// The error to throw to hand this task over to a workflow whose result
    /// task inherits this task's id (Celery's `self.replace(sig)`).
    public func replace(with canvas: Canvas) -> TaskReplaced { TaskReplaced(canvas: canvas) }

    /// How many times this task id was retried before.
    public var retries: Int { message.retries }
}
