/// A task with typed arguments and result, and its body. Register it with a worker
/// (`CelerisWorker.main(tasks: [add])`, `registry.register(add)`); a Celery caller may
/// pass the arguments by position or by name, as to a Python function.
///
///     struct AddArguments: Codable, Sendable { var x: Int; var y: Int }
///     let add = CelerisTask<AddArguments, Int>("add") { a, ctx in a.x + a.y }
///     let slow = CelerisTask<AddArguments, Int>("slow_add", blocking: { a, ctx in
///         try ctx.sleep(seconds: 1); return a.x + a.y
///     })
///
/// Arguments that do not fit fail the task with a Python-style `TypeError`
/// (`add() missing 1 required positional argument: 'y'`); see `TypedArguments`.
public struct CelerisTask<Arguments: Codable & Sendable, Output: Codable & Sendable>: TypedTask, RegistrableTask {
    /// The name the task is registered and sent under (Celery's task name).
    ///
    ///     add.name  // "add"
    public let name: String
    /// Its retries, time limits, rate limit, result expiry, `autoretryFor`…
    ///
    ///     var add = CelerisTask<AddArguments, Int>("add") { a, _ in a.x + a.y }
    ///     add.options.timeLimit = 30
    public var options: TaskOptions
    private let body: Body

    private enum Body: Sendable {
        case async(@Sendable (Arguments, TaskContext) async throws -> Output)
        case blocking(@Sendable (Arguments, TaskContext) throws -> Output)
    }

    /// An async task: it holds a worker slot, not a thread, while it awaits.
    ///
    ///     let fetch = CelerisTask<URLArguments, Int>("fetch") { a, ctx in try await download(a.url).count }
    public init(
        _ name: String, options: TaskOptions = TaskOptions(),
        _ body: @escaping @Sendable (Arguments, TaskContext) async throws -> Output
    ) {
        self.name = name
        self.options = options
        self.body = .async(body)
    }

    /// A blocking task: it runs on a thread of its own for as long as it takes.
    ///
    ///     let hash = CelerisTask<PathArguments, String>("hash", blocking: { a, _ in try sha256(file: a.path) })
    public init(
        _ name: String, options: TaskOptions = TaskOptions(),
        blocking body: @escaping @Sendable (Arguments, TaskContext) throws -> Output
    ) {
        self.name = name
        self.options = options
        self.body = .blocking(body)
    }

    /// Register under `name`: decode the message's `args`/`kwargs`, run the body, store its
    /// output as JSON.
    public func register(into registry: inout TaskRegistry) {
        let name = name
        switch body {
        case .async(let body):
            registry.register(
                name, options: options,
                async: { ctx in
                    let arguments = try TypedArguments.decode(
                        Arguments.self, args: ctx.message.args, kwargs: ctx.message.kwargs, task: name)
                    return try TypedResult.output(try await body(arguments, ctx))
                })
        case .blocking(let body):
            registry.register(name, options: options) { ctx in
                let arguments = try TypedArguments.decode(
                    Arguments.self, args: ctx.message.args, kwargs: ctx.message.kwargs, task: name)
                return try TypedResult.output(try body(arguments, ctx))
            }
        }
    }
}
