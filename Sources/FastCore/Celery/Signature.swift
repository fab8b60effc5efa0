/// A Celery signature as it travels in `embed.chain`, `embed.chord` and
/// `embed.callbacks`: `{"task", "args", "kwargs", "options", "subtask_type", "immutable"}`.
public struct Signature: Sendable {
    public var task: String
    public var args: [JSON]
    public var kwargs: [(key: String, value: JSON)]
    /// `task_id`, `group_id`, `queue`, `reply_to`, …
    public var options: JSON
    public var subtaskType: String?
    public var immutable: Bool

    public init(
        _ task: String, args: [JSON] = [], kwargs: [(key: String, value: JSON)] = [], options: JSON = [:],
        immutable: Bool = false
    ) {
        self.task = task
        self.args = args
        self.kwargs = kwargs
        self.options = options
        self.subtaskType = nil
        self.immutable = immutable
    }

    public init?(json: JSON) {
        guard let task = json["task"]?.stringValue else { return nil }
        self.task = task
        args = json["args"]?.arrayValue ?? []
        kwargs = json["kwargs"]?.objectPairs ?? []
        options = json["options"] ?? [:]
        subtaskType = json["subtask_type"]?.stringValue
        immutable = json["immutable"] == true
    }

    public var json: JSON {
        [
            "task": .string(task), "args": .array(args), "kwargs": .object(kwargs), "options": options,
            "subtask_type": subtaskType.map(JSON.string) ?? nil, "immutable": .bool(immutable),
        ]
    }

    /// The task id it was frozen with.
    public var id: String? { options["task_id"]?.stringValue }

    /// The arguments it runs with after a parent returned `result` (partial application, as Celery does).
    public func arguments(after result: JSON?) -> [JSON] {
        guard let result, !immutable else { return args }
        return [result] + args
    }
}
