/// What a task runs: it reads its arguments from the context, may report
/// progress through it, and returns a JSON result or throws.
public typealias TaskFunction = @Sendable (TaskContext) throws -> JSON

/// Task names a worker can run, with their functions and options.
///
///     var registry = TaskRegistry()
///     registry.register("add") { ctx in .int(try ctx.int(0, "x") + ctx.int(1, "y")) }
public struct TaskRegistry: Sendable {
    private var tasks: [String: RegisteredTask] = [:]

    public init() {}

    /// Register (or replace) a task under `name`.
    public mutating func register(
        _ name: String, options: TaskOptions = TaskOptions(), _ function: @escaping TaskFunction
    ) {
        tasks[name] = RegisteredTask(name: name, options: options, body: .sync(function))
    }

    /// Register (or replace) an async task under `name`: it holds a slot, not a thread, while it awaits.
    ///
    ///     registry.register("fetch", async: { ctx in .string(try await fetch(ctx.argument(0, "url"))) })
    public mutating func register(
        _ name: String, options: TaskOptions = TaskOptions(), async function: @escaping AsyncTaskFunction
    ) {
        tasks[name] = RegisteredTask(name: name, options: options, body: .async(function))
    }

    /// Register a typed task (or a set of tasks).
    ///
    ///     registry.register(resize)
    public mutating func register(_ task: some RegistrableTask) { task.register(into: &self) }

    /// The task registered as `name`, or nil.
    public func task(named name: String) -> RegisteredTask? { tasks[name] }

    /// Change a registered task's options (remote control: `time_limit`, `rate_limit`).
    public mutating func update(_ name: String, _ change: (inout TaskOptions) -> Void) -> Bool {
        guard let t = tasks[name] else { return false }
        var options = t.options
        change(&options)
        tasks[name] = RegisteredTask(name: name, options: options, body: t.body)
        return true
    }

    /// Every registered name, sorted.
    public var names: [String] { tasks.keys.sorted() }
}
