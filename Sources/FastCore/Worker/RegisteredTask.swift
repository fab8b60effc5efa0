/// What an async task runs: as `TaskFunction`, but it may await; it holds a worker slot
/// and no thread while it waits.
public typealias AsyncTaskFunction = @Sendable (TaskContext) async throws -> JSON

/// A registered task: its function and its options.
public struct RegisteredTask: Sendable {
    /// A task's body: run on a thread of its own (`sync`), or awaited (`async`).
    public enum Body: Sendable {
        /// Runs on a thread of its own (it may block).
        case sync(TaskFunction)
        /// Awaited on Swift's global executor, holding a slot and no thread.
        case async(AsyncTaskFunction)
    }
    /// The name messages call it by.
    public let name: String
    /// Its retries, time limits, rate limit, result expiry, `autoretryFor`…
    public let options: TaskOptions
    /// What runs: a sync function on a thread, or an async one awaited.
    ///
    ///     if case .async = registry.task(named: "fetch")?.body { … }
    public let body: Body

    /// Whether the body is async.
    var isAsync: Bool {
        if case .async = body { return true }
        return false
    }
}
