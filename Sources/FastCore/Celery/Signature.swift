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

    /// A signature as a message carries it; nil when it is not one (see `init(decoding:at:)`).
    public init?(json: JSON) {
        guard let sig = try? Signature(decoding: json) else { return nil }
        self = sig
    }

    /// Decode a signature from a message, checking every field a worker reads: the
    /// signature an object, `task` a non-empty string, `args` a list, `kwargs` and
    /// `options` objects (`args`/`kwargs` may be absent or null, `options` absent),
    /// `task_id`/`group_id`/`queue` strings, `chain` a list, `subtask_type` a string,
    /// `immutable` a bool. The error is the `ValueError` the task fails with; `path`
    /// says where the signature was found (`embed.chain[-1]`).
    ///
    ///     let next = try Signature(decoding: step, at: "embed.chain[-1]")
    public init(decoding json: JSON, at path: String = "signature") throws(TaskFailure) {
        func bad(_ what: String) -> TaskFailure {
            TaskFailure(type: "ValueError", message: "malformed signature at \(path): \(what)")
        }
        guard case .object = json else { throw bad("not an object but \(Signature.typeName(json))") }
        guard let task = json["task"]?.stringValue, !task.isEmpty else {
            throw bad("task must be a non-empty string, got \(Signature.typeName(json["task"]))")
        }
        self.task = task
        switch json["args"] {
        case nil, .null?: args = []
        case .array(let a)?: args = a
        case let other: throw bad("args must be a list, got \(Signature.typeName(other))")
        }
        switch json["kwargs"] {
        case nil, .null?: kwargs = []
        case .object(let pairs)?: kwargs = pairs
        case let other: throw bad("kwargs must be an object, got \(Signature.typeName(other))")
        }
        switch json["options"] {
        case nil: options = [:]
        case .object(let pairs)?:
            options = .object(pairs)
            for key in ["task_id", "group_id", "queue"] {
                switch options[key] {
                case nil, .null?: continue
                case .string(let s)? where !s.isEmpty: continue
                case let other: throw bad("options.\(key) must be a non-empty string, got \(Signature.typeName(other))")
                }
            }
            switch options["chain"] {
            case nil, .null?, .array?: break
            case let other: throw bad("options.chain must be a list, got \(Signature.typeName(other))")
            }
        case let other: throw bad("options must be an object, got \(Signature.typeName(other))")
        }
        switch json["subtask_type"] {
        case nil, .null?: subtaskType = nil
        case .string(let s)?: subtaskType = s
        case let other: throw bad("subtask_type must be a string, got \(Signature.typeName(other))")
        }
        switch json["immutable"] {
        case nil, .null?: immutable = false
        case .bool(let b)?: immutable = b
        case let other: throw bad("immutable must be a bool, got \(Signature.typeName(other))")
        }
    }

    public var json: JSON {
        [
            "task": .string(task), "args": .array(args), "kwargs": .object(kwargs), "options": options,
            "subtask_type": subtaskType.map(JSON.string) ?? nil, "immutable": .bool(immutable),
        ]
    }

    /// The task id it was frozen with.
    public var id: String? { options["task_id"]?.stringValue }

    /// Set one option; options that are not an object (set by hand) are replaced by one.
    ///
    ///     sig.setOption("task_id", .string(id))
    public mutating func setOption(_ key: String, _ value: JSON) {
        if options.objectPairs == nil { options = [:] }
        options = options.setting(key, value)
    }

    /// The id it was frozen with, or a new one it is frozen with now.
    mutating func freeze() -> String {
        if let id { return id }
        let id = TaskMessage.newId()
        setOption("task_id", .string(id))
        return id
    }

    /// The arguments it runs with after a parent returned `result` (partial application, as Celery does).
    public func arguments(after result: JSON?) -> [JSON] {
        guard let result, !immutable else { return args }
        return [result] + args
    }

    /// Python's name for a JSON value's type, for error messages (`nothing` when missing).
    static func typeName(_ v: JSON?) -> String {
        switch v {
        case nil: return "nothing"
        case .null?: return "None"
        case .bool?: return "bool"
        case .int?: return "int"
        case .double?: return "float"
        case .string?: return "str"
        case .array?: return "list"
        case .object?: return "dict"
        }
    }
}
