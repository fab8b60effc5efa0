/// How many deliveries a worker holds per executor slot (its prefetch window): a set
/// `--prefetch-multiplier` as Celery means it (that many per slot, whatever the tasks);
/// by default sized from how long the tasks take, so that each slot holds the task it
/// runs plus at most `queuedSecondsPerSlot` of queued work. Short tasks are claimed in
/// deep batches (up to `maxPerSlot` per slot: few round trips), long ones about one per
/// free slot (another worker takes the rest instead of waiting while this one hoards them).
///
/// A task's duration is its run time (start to the result posted), averaged over recent
/// completions (an exponential moving average); a task still running counts with the
/// time it has run so far, so a long task among short ones shrinks the window before it
/// finishes. Before any task finished the window is one per slot; it then grows by one
/// per completion (a slow start, as TCP's: a deep claim only after tasks were seen to be
/// short), and a task long enough that a slot may hold nothing queued starts the growth
/// again. Times come from the
/// worker's clock (`WorkerConfiguration.clock`): the type reads none itself.
///
///     var budget = ClaimBudget(multiplier: nil)
///     budget.finished(started: 10.0, at: 10.000_004)
///     let window = budget.window(slots: 2)  // 3: one more per completion, up to 2 × 256 for 4 µs tasks
public struct ClaimBudget: Sendable, Equatable {
    /// Seconds of queued (claimed, not yet running) work a slot may hold by default.
    public static let defaultQueuedSecondsPerSlot = 0.004
    /// Deliveries per slot at most by default (the deepest batch: the tuned best drains here).
    public static let defaultMaxPerSlot = 256
    /// How much one completion moves the average.
    static let weight = 0.25

    /// `--prefetch-multiplier` when set: the window is exactly that many per slot.
    public let multiplier: Int?
    public let queuedSecondsPerSlot: Double
    public let maxPerSlot: Int
    /// The average run time of recent tasks; nil until one finished.
    public private(set) var averageSeconds: Double?
    /// How long the longest-running task now running has run (`running(longest:)`).
    public private(set) var runningSeconds = 0.0
    /// Deliveries the window may hold beyond one per slot, grown by one per completion.
    public private(set) var allowance = 0

    public init(
        multiplier: Int?, queuedSecondsPerSlot: Double = Self.defaultQueuedSecondsPerSlot,
        maxPerSlot: Int = Self.defaultMaxPerSlot
    ) {
        self.multiplier = multiplier.map { max(1, $0) }
        self.queuedSecondsPerSlot = max(0, queuedSecondsPerSlot)
        self.maxPerSlot = max(1, maxPerSlot)
    }

    /// Whether the window follows the tasks' durations (no `--prefetch-multiplier`).
    public var isAdaptive: Bool { multiplier == nil }

    /// A task that started at `started` finished at `at` (clock seconds).
    public mutating func finished(started: Double, at: Double) {
        guard multiplier == nil else { return }
        let seconds = max(0, at - started)
        guard seconds.isFinite else { return }
        if let a = averageSeconds {
            averageSeconds = a + (seconds - a) * Self.weight
        } else {
            averageSeconds = seconds
        }
        allowance = perSlot == 1 ? 0 : min(allowance + 1, Self.largestAllowance)
    }

    /// The allowance's bound (a window never needs more: 4096 slots × the deepest batch).
    static let largestAllowance = 4096 * 1024

    /// The task running longest now started at `started` (nil: none runs); `now` is the clock's time.
    public mutating func running(longestStartedAt started: Double?, now: Double) {
        guard let started, now > started, (now - started).isFinite else {
            runningSeconds = 0
            return
        }
        runningSeconds = now - started
        if perSlot == 1 { allowance = 0 }
    }

    /// The duration a queued task is expected to take: the average, or what the longest
    /// running task has run so far when that is longer.
    public var expectedSeconds: Double? {
        guard let a = averageSeconds else { return runningSeconds > 0 ? runningSeconds : nil }
        return max(a, runningSeconds)
    }

    /// Deliveries held per slot at most: the running one plus the queued work the budget allows.
    public var perSlot: Int {
        if let multiplier { return multiplier }
        guard let expected = expectedSeconds else { return 1 }
        guard expected > 0 else { return maxPerSlot }
        let queued = queuedSecondsPerSlot / expected
        guard queued < Double(maxPerSlot) else { return maxPerSlot }
        // (a hair over: 4 ms / 1 ms is 4, not 3.999…)
        return min(maxPerSlot, 1 + Int(queued * (1 + 1e-9)))
    }

    /// Deliveries the worker holds ahead of and in execution at most, with `slots` executor slots.
    public func window(slots: Int) -> Int {
        let slots = max(1, slots)
        let (w, overflow) = slots.multipliedReportingOverflow(by: perSlot)
        let most = overflow ? Int.max / 2 : max(1, w)
        guard multiplier == nil else { return most }
        let (grown, over) = slots.addingReportingOverflow(allowance)
        return over ? most : min(most, grown)
    }
}
