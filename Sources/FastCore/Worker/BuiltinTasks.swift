/// The tasks every Celeris worker knows: the tutorial's `create_task`, and
/// `add` / `noop` / `noop_async` / `tsum` for interop tests, benchmarks and chords. The document
/// pipeline's tasks are `DocumentTasks`' (`celeris-worker` registers both).
public enum BuiltinTasks {
    /// Register `create_task`, `add`, `noop`, `noop_async` (the same, as an async task) and `tsum` into `registry`.
    ///
    ///     var registry = TaskRegistry()
    ///     BuiltinTasks.register(into: &registry)
    public static func register(into registry: inout TaskRegistry) {
        registry.register("create_task", createTask)
        registry.register("add", add)
        registry.register("noop") { ctx in ctx.argument(0, "x") ?? .null }
        registry.register("noop_async", async: { ctx in ctx.argument(0, "x") ?? .null })
        registry.register("tsum", tsum)
    }

    /// `create_task(task_length)`: per step, store PROGRESS `{"progress": i}`,
    /// publish it on `task_status`, sleep; returns `{"status": "Task completed"}`.
    @Sendable static func createTask(_ ctx: TaskContext) throws -> JSON {
        let n = try ctx.int(0, "task_length")
        guard n >= 0, n <= 1_000_000 else {
            throw TaskFailure(type: "ValueError", message: "task_length must be between 0 and 1000000, got \(n)")
        }
        for i in 0..<n {
            ctx.updateState(.progress, meta: ["progress": .int(i)])
            ctx.publishStatus(["state": "PROGRESS", "progress": .int(i), "total": .int(n)])
            try ctx.sleep(seconds: ctx.stepSeconds)
        }
        ctx.publishOnCompletion(["progress": .int(n), "total": .int(n)])
        return ["status": "Task completed"]
    }

    /// `add(x, y)`: Python's `x + y` for numbers, strings and lists.
    @Sendable static func add(_ ctx: TaskContext) throws -> JSON {
        guard let x = ctx.argument(0, "x"), let y = ctx.argument(1, "y") else {
            throw TaskFailure(type: "TypeError", message: "add() missing required positional arguments: 'x' and 'y'")
        }
        switch (x, y) {
        case (.int(let a), .int(let b)):
            let (sum, overflow) = a.addingReportingOverflow(b)
            return overflow ? .double(Double(a) + Double(b)) : .int(sum)
        case (.string(let a), .string(let b)): return .string(a + b)
        case (.array(let a), .array(let b)): return .array(a + b)
        default:
            if let a = x.doubleValue, let b = y.doubleValue, !isBool(x), !isBool(y) { return .double(a + b) }
            throw TaskFailure(
                type: "TypeError",
                message: "unsupported operand type(s) for +: \(PythonRepr.repr(x)) and \(PythonRepr.repr(y))")
        }
    }

    /// `tsum(numbers)`: the sum of a list (a chord body).
    @Sendable static func tsum(_ ctx: TaskContext) throws -> JSON {
        guard let items = ctx.argument(0, "numbers")?.arrayValue else {
            throw TaskFailure(type: "TypeError", message: "tsum() takes a list of numbers")
        }
        if items.allSatisfy({ if case .int = $0 { return true } else { return false } }) {
            // Python's ints do not wrap: a sum past Int64 is given as a float, as `add` does.
            var sum: Int64 = 0
            for item in items {
                let (next, overflow) = sum.addingReportingOverflow(item.intValue ?? 0)
                if overflow { return .double(items.reduce(0) { $0 + ($1.doubleValue ?? 0) }) }
                sum = next
            }
            return .int(sum)
        }
        guard items.allSatisfy({ $0.doubleValue != nil }) else {
            throw TaskFailure(type: "TypeError", message: "tsum() takes a list of numbers")
        }
        return .double(items.reduce(0) { $0 + ($1.doubleValue ?? 0) })
    }

    private static func isBool(_ v: JSON) -> Bool { if case .bool = v { return true } else { return false } }
}

extension BuiltinTasks {
    /// The built-in tasks as one registrable set.
    ///
    ///     CelerisWorker.main(tasks: [BuiltinTasks.all, resize])
    public static let all: some RegistrableTask = TaskSet(register: BuiltinTasks.register(into:))
}
