import Foundation

/// What `POST /tasks` may send: task names on an allow-list (exact or `fnmatch`
/// globs), arguments bounded for the tasks the frontend knows (`create_task`,
/// `add`), queue names checked for shape and limited to a known set, and token
/// scopes that narrow the allow-list (`tasks:NAME` allows only NAME).
///
///     var policy = TaskPolicy()
///     policy.allowedTasks.append("report_*")
///     if let refusal = policy.refusal(for: submission, routes: routes, scopes: nil) { /* 403/422 */ }
public struct TaskPolicy: Sendable {
    /// Task names (or globs) a client may send; by default the tutorial's `create_task` and `add`.
    public var allowedTasks: [String] = TaskPolicy.defaultTasks
    /// Most steps a `create_task` may ask for.
    public var maxTaskLength = 1000
    /// Queues a client may name besides `celery` and the routed ones.
    public var allowedQueues: Set<String> = []

    /// The default allow-list: what the README's walkthrough sends to `POST /tasks`.
    public static let defaultTasks = ["create_task", "add"]
    /// The longest queue name accepted.
    public static let maxQueueNameBytes = 200

    public init() {}

    /// A refused submission: the HTTP status, the error code and the reason.
    public struct Refusal: Error, Equatable, Sendable {
        public let status: Int
        public let code: String
        public let detail: String
    }

    /// Whether `name` has a queue name's shape: 1...200 bytes of `A-Z a-z 0-9 _ . : @ -`.
    public static func isValidQueueName(_ name: String) -> Bool {
        let bytes = name.utf8
        guard !bytes.isEmpty, bytes.count <= maxQueueNameBytes else { return false }
        return bytes.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A) || b == 0x5F || b == 0x2E || b == 0x3A
                || b == 0x40 || b == 0x2D
        }
    }

    /// Whether the allow-list has `task`.
    public func allows(task: String) -> Bool {
        allowedTasks.contains(task) || allowedTasks.contains { fnmatch($0, task, 0) == 0 }
    }

    /// Why `submission` may not be sent, or nil when it may. `scopes` are the
    /// token's (nil: auth off); a token with `tasks:NAME` scopes may send only
    /// those names (still within the allow-list).
    public func refusal(for submission: TaskSubmission, routes: TaskRoutes, scopes: [String]?) -> Refusal? {
        let task = submission.task
        guard allows(task: task) else {
            return Refusal(
                status: 403, code: "task_not_allowed", detail: "task '\(task)' is not allowed by this frontend")
        }
        if let scopes, !scopes.contains("*"), !scopes.contains("tasks") {
            guard scopes.contains("tasks:" + task) else {
                return Refusal(status: 403, code: "forbidden", detail: "token does not allow task '\(task)'")
            }
        }
        if let queue = submission.queue {
            guard Self.isValidQueueName(queue) else {
                return Refusal(
                    status: 422, code: "invalid_task",
                    detail: "'queue' must be 1 to \(Self.maxQueueNameBytes) characters of A-Z a-z 0-9 _ . : @ -")
            }
            let routed = routes.rules.contains { $0.queue == queue }
            guard queue == "celery" || routed || allowedQueues.contains(queue) else {
                return Refusal(status: 403, code: "queue_not_allowed", detail: "queue '\(queue)' is not allowed")
            }
        }
        if let scopes, !scopes.contains("*"), !scopes.contains("tasks"),
            submission.taskId != nil
                || (submission.link + submission.linkError).contains(where: { $0.options["task_id"] != nil })
        {
            // A chosen id could overwrite another task's result record.
            return Refusal(
                status: 403, code: "forbidden",
                detail: "only a token with the whole 'tasks' scope may choose a task_id")
        }
        if let refused = linkRefusal(submission, routes: routes, scopes: scopes) { return refused }
        return argumentRefusal(task: submission.task, args: submission.args, kwargs: submission.kwargs)
    }

    /// The tasks whose arguments this policy bounds (`argumentRefusal`).
    public static let boundedTasks: Set<String> = ["create_task", "add"]

    /// Linked tasks (`link`, `link_error`) pass the same name, scope, queue and argument
    /// checks as the task. A link runs with its parent's result prepended to its args
    /// (an errback with the failed task's id), so a bounded task may be linked only
    /// `immutable` (its args are then exactly the ones checked) and never as an errback.
    private func linkRefusal(_ s: TaskSubmission, routes: TaskRoutes, scopes: [String]?) -> Refusal? {
        if let sig = s.linkError.first(where: { Self.boundedTasks.contains($0.task) }) {
            return Refusal(
                status: 422, code: "invalid_task",
                detail: "'\(sig.task)' may not be a link_error task (it would run with the failed task's id)")
        }
        if let sig = s.link.first(where: { Self.boundedTasks.contains($0.task) && !$0.immutable }) {
            return Refusal(
                status: 422, code: "invalid_task",
                detail:
                    "a linked '\(sig.task)' must be immutable (\"immutable\": true); else it runs with the parent's result as its first argument"
            )
        }
        for sig in s.link + s.linkError {
            guard allows(task: sig.task) else {
                return Refusal(
                    status: 403, code: "task_not_allowed",
                    detail: "linked task '\(sig.task)' is not allowed by this frontend")
            }
            if let scopes, !scopes.contains("*"), !scopes.contains("tasks"), !scopes.contains("tasks:" + sig.task) {
                return Refusal(status: 403, code: "forbidden", detail: "token does not allow linked task '\(sig.task)'")
            }
            // With the default exchange a routing key names the queue too (kombu routes by it).
            for queue in ["queue", "routing_key"].compactMap({ sig.options[$0]?.stringValue }) {
                guard Self.isValidQueueName(queue) else {
                    return Refusal(
                        status: 422, code: "invalid_task",
                        detail:
                            "a linked task's queue must be 1 to \(Self.maxQueueNameBytes) characters of A-Z a-z 0-9 _ . : @ -"
                    )
                }
                guard
                    queue == "celery" || routes.rules.contains(where: { $0.queue == queue })
                        || allowedQueues.contains(queue)
                else {
                    return Refusal(status: 403, code: "queue_not_allowed", detail: "queue '\(queue)' is not allowed")
                }
            }
            if let refused = argumentRefusal(task: sig.task, args: sig.arguments(after: nil), kwargs: sig.kwargs) {
                return Refusal(status: refused.status, code: refused.code, detail: "linked task: " + refused.detail)
            }
        }
        return nil
    }

    /// Bounds on the arguments of the tasks the frontend knows (`boundedTasks`).
    private func argumentRefusal(task: String, args: [JSON], kwargs: [(key: String, value: JSON)]) -> Refusal? {
        func invalid(_ detail: String) -> Refusal { Refusal(status: 422, code: "invalid_task", detail: detail) }
        switch task {
        case "create_task":
            let named = kwargs.filter { $0.key == "task_length" }.map(\.value)
            guard args.count + named.count == 1, kwargs.count == named.count,
                let n = (args + named).first?.intValue, n >= 0, n <= Int64(maxTaskLength)
            else {
                return invalid("create_task takes one task_length, an integer from 0 to \(maxTaskLength)")
            }
        case "add":
            let named = kwargs.filter { $0.key == "x" || $0.key == "y" }.map(\.value)
            let values = args + named
            guard values.count == 2, kwargs.count == named.count,
                values.allSatisfy({ v in
                    switch v {
                    case .int, .double: return true
                    default: return false
                    }
                })
            else { return invalid("add takes two numbers, x and y") }
        default:
            break
        }
        return nil
    }
}
