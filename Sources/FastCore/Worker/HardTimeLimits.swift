/// The held deliveries whose task has a hard time limit, watched once per turn: a
/// task past its limit is abandoned (its slot replaced), and the nearest future
/// deadline bounds the loop's wait.
///
///     var limits = HardTimeLimits()
///     limits.watch(tag)
///     for (tag, runner, hard) in limits.expired(now: now, held: held, pool: pool) { … }
struct HardTimeLimits {
    private var tags: [String] = []
    /// The earliest hard time limit among running tasks, from the last pass.
    private(set) var nextDeadline = Double.infinity

    /// Watch a held delivery whose task has a hard limit.
    mutating func watch(_ tag: String) { tags.append(tag) }

    /// Abandon the tasks past their hard limit; returns each (tag, runner, limit).
    mutating func expired(now: Double, held: [String: TaskContext], pool: ExecutorPool)
        -> [(tag: String, runner: TaskContext, limit: Double)]
    {
        nextDeadline = .infinity
        tags.removeAll { held[$0] == nil }
        var out: [(tag: String, runner: TaskContext, limit: Double)] = []
        for tag in tags {
            guard let h = held[tag], let started = h.started, let hard = h.limits.hard else { continue }
            guard now >= started + hard else {
                nextDeadline = min(nextDeadline, started + hard)
                continue
            }
            guard !h.isAbandoned else { continue }
            pool.abandon(h)
            guard h.isAbandoned else { continue }
            out.append((tag, h, hard))
        }
        return out
    }
}
