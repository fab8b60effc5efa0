/// The held async tasks with a soft time limit, watched once per turn: one past its
/// limit (judged by the worker's clock) has its Swift task cancelled, so its body sees
/// `CancellationError` and fails with `SoftTimeLimitExceeded` unless it catches it. A
/// sync task checks its own soft limit (`TaskContext.checkSoftTimeLimit`, `sleep`).
///
///     var limits = SoftTimeLimits()
///     limits.watch(tag)
///     limits.cancelExpired(now: now, held: held)
struct SoftTimeLimits {
    private var tags: [String] = []
    /// The earliest soft time limit among running async tasks, from the last pass.
    private(set) var nextDeadline = Double.infinity

    /// Watch a held async delivery whose task has a soft limit.
    mutating func watch(_ tag: String) { tags.append(tag) }

    /// Cancel the async tasks past their soft limit (each once); returns how many.
    @discardableResult
    mutating func cancelExpired(now: Double, held: [String: TaskContext]) -> Int {
        nextDeadline = .infinity
        guard !tags.isEmpty else { return 0 }
        var cancelled = 0
        tags.removeAll { tag in
            guard let h = held[tag] else { return true }
            guard let started = h.started, let soft = h.limits.soft else { return false }
            guard now >= started + soft else {
                nextDeadline = min(nextDeadline, started + soft)
                return false
            }
            h.cancelAtSoftLimit()
            cancelled += 1
            return true
        }
        return cancelled
    }
}
