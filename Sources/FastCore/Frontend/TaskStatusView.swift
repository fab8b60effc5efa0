/// `GET /status/{id}` as the scaling guide's FastAPI endpoint answers it,
/// plus Celery's own `state`.
///
///     TaskStatusView.render(record: nil)  // {"status": "Pending...", "state": "PENDING"}
public enum TaskStatusView {
    /// The answer for a result record's JSON text (nil: no record yet).
    public static func render(record: String?) -> JSON {
        guard let record else { return ["status": "Pending...", "state": "PENDING"] }
        guard let json = try? JSONParser.parse(record), let state = json["status"]?.stringValue else {
            return ["status": "Failed", "state": "UNKNOWN", "result": "unreadable result record"]
        }
        let result = json["result"] ?? .null
        switch state {
        case "SUCCESS":
            return ["status": "Completed", "state": "SUCCESS", "result": result]
        case "FAILURE":
            return ["status": "Failed", "state": "FAILURE", "result": .string(TaskFailureText.text(result))]
        case "PENDING":
            return ["status": "Pending...", "state": "PENDING"]
        default:
            return ["status": .string(state), "state": .string(state), "meta": result]
        }
    }
}

extension TaskStatusView {
    /// A task a result record names in Celery's `children`: a sent task's id, with
    /// its group's id when it is a member of a group result.
    public struct Child: Equatable, Sendable {
        public let taskId: String
        public let groupId: String?

        public init(taskId: String, groupId: String? = nil) {
            self.taskId = taskId
            self.groupId = groupId
        }
    }

    /// Most children one `GET /status` looks up.
    public static let maxChildren = 1000

    /// The children a record lists, one level: `[[id, parent], null]` is a task,
    /// `[[gid, parent], [member, …]]` a group whose members are listed (each with the
    /// group's id). Malformed entries are skipped; at most `maxChildren`.
    ///
    ///     TaskStatusView.children(record: #"{"status": "SUCCESS", "children": [[["c1", null], null]]}"#)
    ///     // [Child(taskId: "c1")]
    public static func children(record: String?) -> [Child] {
        guard let record, record.utf8.contains(UInt8(ascii: "[")),
            let json = try? JSONParser.parse(record), let items = json["children"]?.arrayValue
        else { return [] }
        var out: [Child] = []
        /// The id of a serialized result: `[[id, parent], nodes]` (or `[id, parent]`'s id as a bare string).
        func id(of node: JSON) -> String? {
            guard let head = node[0] else { return nil }
            let text = head.stringValue ?? head[0]?.stringValue
            guard let text, TaskSubmission.isValidTaskId(text) else { return nil }
            return text
        }
        for item in items where out.count < maxChildren {
            guard let itemId = id(of: item) else { continue }
            if let members = item[1]?.arrayValue {
                for member in members where out.count < maxChildren {
                    if let memberId = id(of: member) { out.append(Child(taskId: memberId, groupId: itemId)) }
                }
            } else {
                out.append(Child(taskId: itemId))
            }
        }
        return out
    }

    /// The answer with `"children"`: each child's `task_id` (and `group_id`) and its
    /// `render` fields, from its record (nil: none yet). No children: `render(record:)`.
    ///
    ///     TaskStatusView.render(record: parent, children: [(Child(taskId: "c1"), childRecord)])
    public static func render(record: String?, children: [(child: Child, record: String?)]) -> JSON {
        let view = render(record: record)
        guard !children.isEmpty else { return view }
        let list = children.map { entry -> JSON in
            var fields: [(key: String, value: JSON)] = [("task_id", .string(entry.child.taskId))]
            if let g = entry.child.groupId { fields.append(("group_id", .string(g))) }
            return .object(fields + (render(record: entry.record).objectPairs ?? []))
        }
        return view.setting("children", .array(list))
    }
}
