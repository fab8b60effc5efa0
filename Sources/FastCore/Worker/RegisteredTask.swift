/// What an async task runs: as `TaskFunction`, but it may await; it holds a worker slot
/// and no thread while it waits.
public typealias AsyncTaskFunction = @Sendable (TaskContext) async throws -> JSON

/// A registered task: its function and its options.
public struct RegisteredTask: Sendable {
    /// A task's body: run on a thread of its own (`sync`), or awaited (`async`).
    public enum Body: Sendable {
        case sync(TaskFunction)
        case async(AsyncTaskFunction)
    }
    public let name: String
    public let options: TaskOptions
    public let body: Body

    /// Whether the body is async.
    var isAsync: Bool {
        if case .async = body { return true }
        return false
    }
}
