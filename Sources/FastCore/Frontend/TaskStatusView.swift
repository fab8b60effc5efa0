/// `GET /status/{id}` as the scaling guide's FastAPI endpoint answers it,
/// plus Celery's own `state`.
///
///     TaskStatusView.render(record: nil)  // {"status": "Pending...", "state": "PENDING"}
public enum TaskStatusView {
    /// The answer for a result record's JSON text (nil: no record yet).
    public static func render(record: String?) -> JSON {
        guard let record else { return ["status": "Pending...", "state": "PENDING"] }
        return render(parsed: try? JSONParser.parse(record))
    }

    /// The answer for a record already parsed (nil: unreadable).
    static func render(parsed json: JSON?) -> JSON {
        guard let json, let state = json["status"]?.stringValue else {
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

    /// Most children one `GET /status` looks up (the answer says `children_total` when there are more).
    public static let maxChildren = 100

    /// The children a record lists, one level: `[[id, parent], null]` is a task,
    /// `[[gid, parent], [member, …]]` a group whose members are listed (each with the
    /// group's id). Malformed entries are skipped; at most `maxChildren`.
    ///
    ///     TaskStatusView.children(record: #"{"status": "SUCCESS", "children": [[["c1", null], null]]}"#)
    ///     // [Child(taskId: "c1")]
    public static func children(record: String?) -> [Child] {
        guard let record, record.utf8.contains(UInt8(ascii: "[")), let json = try? JSONParser.parse(record) else {
            return []
        }
        return children(parsed: json).children
    }

    /// A record parsed once: its view, the first `maxChildren` children to look up and
    /// how many it lists in all.
    ///
    ///     let parsed = TaskStatusView.parse(record: text)
    ///     render(parsed.view, children: zip(parsed.children, records), total: parsed.total)
    public static func parse(record: String?) -> (view: JSON, children: [Child], total: Int) {
        guard let record else { return (render(record: nil), [], 0) }
        let json = try? JSONParser.parse(record)
        let view = render(parsed: json)
        guard let json else { return (view, [], 0) }
        let (children, total) = children(parsed: json)
        return (view, children, total)
    }

    /// The first `maxChildren` children of a parsed record and how many valid ones it lists.
    static func children(parsed json: JSON) -> (children: [Child], total: Int) {
        guard let items = json["children"]?.arrayValue else { return ([], 0) }
        var out: [Child] = []
        var total = 0
        /// The id of a serialized result: `[[id, parent], nodes]` (or `[id, parent]`'s id as a bare string).
        func id(of node: JSON) -> String? {
            guard let head = node[0] else { return nil }
            let text = head.stringValue ?? head[0]?.stringValue
            guard let text, TaskSubmission.isValidTaskId(text) else { return nil }
            return text
        }
        func add(_ child: Child) {
            total += 1
            if out.count < maxChildren { out.append(child) }
        }
        for item in items {
            guard let itemId = id(of: item) else { continue }
            if let members = item[1]?.arrayValue {
                for member in members {
                    if let memberId = id(of: member) { add(Child(taskId: memberId, groupId: itemId)) }
                }
            } else {
                add(Child(taskId: itemId))
            }
        }
        return (out, total)
    }

    /// The answer with `"children"`: each child's `task_id` (and `group_id`) and its
    /// `render` fields, from its record (nil: none yet). No children: `render(record:)`.
    ///
    ///     TaskStatusView.render(record: parent, children: [(Child(taskId: "c1"), childRecord)])
    public static func render(record: String?, children: [(child: Child, record: String?)]) -> JSON {
        render(render(record: record), children: children, total: children.count)
    }

    /// A view with `"children"` added (and `"children_total"` when the record lists more
    /// than were looked up).
    public static func render(_ view: JSON, children: [(child: Child, record: String?)], total: Int) -> JSON {
        guard !children.isEmpty else { return view }
        let list = children.map { entry -> JSON in
            var fields: [(key: String, value: JSON)] = [("task_id", .string(entry.child.taskId))]
            if let g = entry.child.groupId { fields.append(("group_id", .string(g))) }
            return .object(fields + (render(record: entry.record).objectPairs ?? []))
        }
        let withChildren = view.setting("children", .array(list))
        return total > children.count ? withChildren.setting("children_total", .int(Int64(total))) : withChildren
    }
}
