/// Anything a worker can register: a typed `CelerisTask`, or a set of tasks such as
/// `BuiltinTasks.all`.
///
///     var registry = TaskRegistry()
///     registry.register(resize)
public protocol RegistrableTask: Sendable {
    /// Add this task (or these tasks) to `registry`.
    func register(into registry: inout TaskRegistry)
}

/// Tasks registered by one function, e.g. `BuiltinTasks.all`.
///
///     let mine = TaskSet { registry in registry.register("ping") { _ in "pong" } }
public struct TaskSet: RegistrableTask {
    private let body: @Sendable (inout TaskRegistry) -> Void
    /// Tasks that `body` registers when the worker registers this set.
    ///
    ///     let mine = TaskSet { $0.register("ping") { _ in "pong" } }
    public init(register body: @escaping @Sendable (inout TaskRegistry) -> Void) { self.body = body }
    /// Run the set's function on `registry`.
    public func register(into registry: inout TaskRegistry) { body(&registry) }
}
