/// One state of a task as the result backend holds it: `PENDING` (nothing stored yet),
/// `STARTED`, `PROGRESS` (with the task's meta), `RETRY`, then `SUCCESS`, `FAILURE` or
/// `REVOKED` with the result (or the error as `{"exc_type", "exc_message", …}`).
///
///     for try await status in handle.states { print(status.state, status.result) }
public struct TaskStatus: Sendable, Equatable {
    /// The task's id.
    public let taskId: String
    /// Celery's state name (`TaskState` raw values, or a task's own state).
    public let state: String
    /// The result, a progress meta, or the error's fields.
    public let result: JSON
    /// The worker's traceback of a failure (Python's text; nil when none was stored).
    public let traceback: String?

    /// A state as the backend would hold it (for tests and tools).
    ///
    ///     let pending = TaskStatus(taskId: id, state: "PENDING")
    public init(taskId: String, state: String, result: JSON = .null, traceback: String? = nil) {
        self.taskId = taskId
        self.state = state
        self.result = result
        self.traceback = traceback
    }

    /// Celery's ready states: nothing follows them.
    public var isFinal: Bool {
        state == TaskState.success.rawValue || state == TaskState.failure.rawValue
            || state == TaskState.revoked.rawValue
    }

    /// The state as a `TaskState`, nil for a task's own state name.
    public var taskState: TaskState? { TaskState(rawValue: state) }

    /// The error a FAILURE or REVOKED state stands for (nil for other states).
    public var failure: TaskFailure? {
        guard state == TaskState.failure.rawValue || state == TaskState.revoked.rawValue else { return nil }
        let fallback = state == TaskState.revoked.rawValue ? "TaskRevokedError" : "Exception"
        let type = result["exc_type"]?.stringValue ?? fallback
        let arguments: [JSON]
        switch result["exc_message"] {
        case .array(let a)?: arguments = a
        case nil, .null?: arguments = []
        case let other?: arguments = [other]
        }
        let module =
            result["exc_module"]?.stringValue
            ?? (state == TaskState.revoked.rawValue ? "celery.exceptions" : "builtins")
        return TaskFailure(type: type, arguments: arguments, module: module)
    }

    /// A record as stored under `celery-task-meta-<id>`; nil when it is not one.
    init?(taskId: String, record: [UInt8]) {
        guard let json = try? JSONParser.parse(record), let state = json["status"]?.stringValue else { return nil }
        self.init(
            taskId: taskId, state: state, result: json["result"] ?? .null, traceback: json["traceback"]?.stringValue)
    }
}
