/// What a task runs: it reads its arguments from the context, may report
/// progress through it, and returns a JSON result or throws.
public typealias TaskFunction = @Sendable (TaskContext) throws -> JSON

/// Task names a worker can run, with their functions.
///
///     var registry = TaskRegistry()
///     registry.register("add") { ctx in .int(try ctx.int(0, "x") + ctx.int(1, "y")) }
public struct TaskRegistry: Sendable {
    private var tasks: [String: TaskFunction] = [:]

    public init() {}

    /// Register (or replace) a task under `name`.
    public mutating func register(_ name: String, _ function: @escaping TaskFunction) {
        tasks[name] = function
    }

    /// The function for `name`, or nil when not registered.
    public func function(named name: String) -> TaskFunction? { tasks[name] }

    /// Every registered name, sorted.
    public var names: [String] { tasks.keys.sorted() }
}
