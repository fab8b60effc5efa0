/// What the worker knows of its queues between claims (Sidekiq's fetch, asynq's
/// processor dequeue): the order it claims from (kombu rotates the queue that just
/// delivered to the back), the deliveries claimed and not yet dispatched, and whether
/// the queues look drained, in which case it claims again only when a waker fires or
/// the idle poll is due, instead of sending an empty claim every turn. How many it holds
/// at most (the prefetch window) is its `budget`'s (`ClaimBudget`).
///
///     var fetcher = Fetcher(queues: ["celery"], maxIdle: 0.02)
///     fetcher.apply(.took(deliveries, asked: 64), now: clock.now())
///     for d in fetcher.takeClaimed() { dispatch(d) }
struct Fetcher {
    /// Queues in the order the next claim takes them.
    private(set) var order: [String]
    /// Claimed and not yet dispatched.
    private(set) var claimedAhead: [Delivery] = []
    /// The last claim took less than it asked for (or, claiming by move, left every list empty).
    private(set) var queuesLookEmpty = true
    /// When the idle poll claims again although no waker fired (priority lists, new queues).
    private(set) var pollDue = 0.0
    /// Seconds of the coming idle wait (doubling while claims find nothing).
    private(set) var idle = 0.001
    /// Redis refused the last claim (LOADING, BUSY, …): none before this time.
    private(set) var pausedUntil = 0.0
    let maxIdle: Double
    /// How many deliveries the worker holds per slot (`--prefetch-multiplier`, or sized from the tasks' durations).
    var budget: ClaimBudget
    /// When the running tasks were last looked at for the budget (`runningDue`).
    private(set) var runningLookedAt = -Double.infinity
    /// How long a refused claim pauses claiming.
    static let refusalPause = 0.5
    /// Seconds between looks at the running tasks (a look visits every held delivery).
    static let runningLookInterval = 0.001

    init(queues: [String], maxIdle: Double, multiplier: Int? = nil) {
        order = queues
        self.maxIdle = maxIdle
        budget = ClaimBudget(multiplier: multiplier)
    }

    /// The prefetch window with `slots` executor slots.
    func window(slots: Int) -> Int { budget.window(slots: slots) }

    /// Whether the running tasks should be looked at now (an adaptive budget, at most every `runningLookInterval`).
    func runningDue(now: Double) -> Bool {
        budget.isAdaptive && now - runningLookedAt >= Self.runningLookInterval
    }

    /// The task running longest now started at `started` (nil: none runs).
    mutating func running(longestStartedAt started: Double?, now: Double) {
        runningLookedAt = now
        budget.running(longestStartedAt: started, now: now)
    }

    /// Consume from `queues` from the next claim on.
    mutating func reset(queues: [String]) { order = queues }

    /// Take in what reading a claim's part gave.
    mutating func apply(_ reply: ClaimReply, now: Double) {
        switch reply {
        case .took(let took, let asked):
            // A claim that took less than it asked for saw the queues drained.
            if let asked, took.count < asked { lookedEmpty(now) } else { queuesLookEmpty = false }
            rotate(after: took)
            if claimedAhead.isEmpty { claimedAhead = took } else { claimedAhead += took }
        case .lengths(let allEmpty):
            if allEmpty { lookedEmpty(now) } else { queuesLookEmpty = false }
        case .refused:
            pausedUntil = now + Self.refusalPause
            lookedEmpty(now)
        case .scriptLost, .none:
            break
        }
    }

    /// The deliveries claimed ahead, leaving the list empty; `list` (an emptied list
    /// whose storage to keep) takes their place.
    mutating func takeClaimed(swappingWith list: inout [Delivery]) {
        swap(&list, &claimedAhead)
    }

    /// Every delivery claimed ahead (shutdown gives them back).
    mutating func takeClaimed() -> [Delivery] {
        defer { claimedAhead.removeAll() }
        return claimedAhead
    }

    /// Put back deliveries `takeClaimed` took (giving them back failed).
    mutating func restore(_ deliveries: [Delivery]) { claimedAhead = deliveries + claimedAhead }

    /// Whether a claim may go now (not paused by a refusal).
    func mayClaim(now: Double) -> Bool { now >= pausedUntil }

    /// Whether the loop should stay quiet this turn: the queues look drained, the idle
    /// poll is not due, and every waker is waiting.
    func isQuiet(now: Double, wakersArmed: Bool) -> Bool { queuesLookEmpty && now < pollDue && wakersArmed }

    /// After a turn that was not quiet: poll again soon after a claim took something,
    /// back off (doubling, up to `maxIdle`) while claims find nothing.
    mutating func turnEnded(claimed: Int) { idle = claimed > 0 ? 0.001 : min(idle * 2, maxIdle) }

    /// The queues were found drained: claim again when a waker fires or the idle poll is due.
    private mutating func lookedEmpty(_ now: Double) {
        queuesLookEmpty = true
        pollDue = now + idle
    }

    /// kombu rotates the queue that just delivered to the back.
    private mutating func rotate(after took: [Delivery]) {
        guard let q = took.last?.queue, order.count > 1 else { return }
        order.removeAll { $0 == q }
        order.append(q)
    }
}
