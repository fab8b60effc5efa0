/// Workflows to send: Celery's canvas, encoded exactly as Celery 5.7 encodes it.
///
///     let flow = Canvas.chain([.task(Signature("fetch", args: ["/docs"])),
///                              .chord([.task(Signature("extract", args: ["a"]))], Signature("compare"))])
///     let (commands, finalId) = flow.sendCommands()
public indirect enum Canvas: Sendable {
    case task(Signature)
    case chain([Canvas])
    case group([Canvas])
    case chord([Canvas], Signature)

    public static let setPrefix = "celery-taskset-meta-"

    /// The Redis commands that start the workflow, and the id whose result is the workflow's result.
    public func sendCommands(
        routes: TaskRoutes = TaskRoutes(), parent: TaskMessage? = nil, partial: JSON? = nil
    ) -> (commands: [[String]], resultId: String) {
        var producer = TaskProducer()
        var out: [[String]] = []
        let id = emit(
            into: &out, producer: &producer, routes: routes, parent: parent, partial: partial, chain: [], group: nil)
        return (out, id)
    }

    /// Append the commands; returns the id of the last task (the workflow's result).
    func emit(
        into out: inout [[String]], producer: inout TaskProducer, routes: TaskRoutes, parent: TaskMessage?,
        partial: JSON?,
        chain rest: [JSON], group: (id: String, index: Int, chord: JSON?)?
    ) -> String {
        switch self {
        case .task(var sig):
            let id = sig.freeze()
            var m = TaskMessage(
                task: sig.task, args: sig.arguments(after: partial), kwargs: sig.kwargs,
                queue: sig.options["queue"]?.stringValue ?? routes.queue(for: sig.task) ?? "celery",
                id: id)
            if let parent {
                m.parentId = parent.id
                m.rootId = parent.rootId ?? parent.id
            }
            m.embed = m.embed.setting("chain", rest.isEmpty ? nil : .array(rest))
            if case .array(let children)? = sig.options[Canvas.childrenOption] {
                // A replaced task's chord body, as its join sends it: its record lists the header.
                m.embed = m.embed.setting(Canvas.childrenOption, .array(children))
            }
            if let group {
                m.group = group.id
                m.groupIndex = group.index
                if let chord = group.chord { m.embed = m.embed.setting("chord", chord) }
            } else {
                m.group = sig.options["group_id"]?.stringValue  // a chord body carries its chord's group id
            }
            out += producer.sendCommands(for: m)
            return m.id
        case .chain(let raw):
            let items = Canvas.upgradingGroups(raw)
            guard let first = items.first else { return "" }
            // Remaining steps travel last-first in embed.chain, each frozen with its task id.
            var frozen: [JSON] = []
            var lastId = ""
            for item in items.dropFirst().reversed() {
                let (json, id) = item.frozenSignature(routes: routes)
                frozen.append(json)
                if lastId.isEmpty { lastId = id }
            }
            let firstId = first.emit(
                into: &out, producer: &producer, routes: routes, parent: parent, partial: partial, chain: frozen + rest,
                group: group)
            return lastId.isEmpty ? firstId : lastId
        case .group(let items):
            let gid = TaskMessage.newId()
            var last = ""
            for (i, item) in items.enumerated() {
                last = item.emit(
                    into: &out, producer: &producer, routes: routes, parent: parent, partial: partial, chain: [],
                    group: (gid, i, nil))
            }
            return last
        case .chord(let header, var body):
            let gid = TaskMessage.newId()
            let bodyId = body.freeze()
            body.setOption("group_id", .string(gid))
            guard !header.isEmpty else {
                // No header task will ever finish to count the chord down: as Celery's
                // `_chord.run` does (`body.delay([])`), the body is sent now, given the
                // empty list of results (the parent's result is the header's, so dropped).
                return Canvas.task(body).emit(
                    into: &out, producer: &producer, routes: routes, parent: parent, partial: .array([]), chain: rest,
                    group: nil)
            }
            if !rest.isEmpty { body.setOption("chain", .array(rest)) }
            out.append(["DEL", Canvas.setPrefix + gid + ".c"])
            out.append([
                "SET", Canvas.setPrefix + gid + ".s", String(header.count), "EX", String(ResultRecord.expirySeconds),
            ])
            for (i, item) in header.enumerated() {
                _ = item.emit(
                    into: &out, producer: &producer, routes: routes, parent: parent, partial: partial, chain: [],
                    group: (gid, i, body.json))
            }
            return bodyId
        }
    }

    /// `emit`, returning what Celery 5.7 lists in the sending task's `children` for it
    /// (`AsyncResult.as_tuple()` / `GroupResult.as_tuple()`): a task (or a chain, whose
    /// first task Celery's `chain.run` sends) is `[[id, null], null]`; a group is
    /// `[[group_id, null], [its members' tuples]]`; a chord is its header group's tuple
    /// (its body is sent later, by the header's last task).
    ///
    ///     let child = flow.emitChild(into: &out, producer: &producer, routes: routes, parent: message, partial: result)
    func emitChild(
        into out: inout [[String]], producer: inout TaskProducer, routes: TaskRoutes, parent: TaskMessage?,
        partial: JSON?, chain rest: [JSON] = [], group: (id: String, index: Int, chord: JSON?)? = nil
    ) -> JSON {
        switch self {
        case .task:
            let id = emit(
                into: &out, producer: &producer, routes: routes, parent: parent, partial: partial, chain: rest,
                group: group)
            return Canvas.childTuple(id)
        case .chain:
            let before = out.count
            _ = emit(
                into: &out, producer: &producer, routes: routes, parent: parent, partial: partial, chain: rest,
                group: group)
            // The first task sent is the chain's first step (its `embed.chain` carries the rest).
            return Canvas.childTuple(Canvas.firstSentId(out[before...]) ?? "")
        case .group(let items):
            let gid = TaskMessage.newId()
            var members: [JSON] = []
            for (i, item) in items.enumerated() {
                members.append(
                    item.emitChild(
                        into: &out, producer: &producer, routes: routes, parent: parent, partial: partial, chain: [],
                        group: (gid, i, nil)))
            }
            return Canvas.groupTuple(gid, members)
        case .chord:
            let before = out.count
            _ = emit(
                into: &out, producer: &producer, routes: routes, parent: parent, partial: partial, chain: rest,
                group: group)
            var gid: String?
            var members: [JSON] = []
            for id in Canvas.sentIds(out[before...]) {
                if gid == nil { gid = id.group }
                if let g = id.group, g == gid { members.append(Canvas.childTuple(id.id)) }
            }
            guard let gid else { return Canvas.childTuple(Canvas.firstSentId(out[before...]) ?? "") }
            return Canvas.groupTuple(gid, members)
        }
    }

    /// A sent task in a record's `children`: `[[id, null], null]`.
    static func childTuple(_ id: String) -> JSON { .array([.array([.string(id), .null]), .null]) }

    /// A sent group in a record's `children`: `[[group_id, null], [members…]]`.
    static func groupTuple(_ gid: String, _ members: [JSON]) -> JSON {
        .array([.array([.string(gid), .null]), .array(members)])
    }

    /// The ids (and group ids) of the task messages among `commands` (LPUSHes of envelopes), in order.
    static func sentIds(_ commands: ArraySlice<[String]>) -> [(id: String, group: String?)] {
        commands.compactMap { command in
            guard command.first == "LPUSH", command.count == 3,
                let m = try? TaskMessage.decode(Array(command[2].utf8))
            else { return nil }
            return (m.id, m.group)
        }
    }

    static func firstSentId(_ commands: ArraySlice<[String]>) -> String? { sentIds(commands).first?.id }

    /// Celery's chain rule: a group followed by another step becomes a chord
    /// whose body is that step (`chain(a, group(b…), c)` = `a | chord(b…, c)`).
    static func upgradingGroups(_ items: [Canvas]) -> [Canvas] {
        var out: [Canvas] = []
        var i = 0
        while i < items.count {
            if case .group(let header) = items[i], i + 1 < items.count, case .task(let body) = items[i + 1] {
                out.append(.chord(header, body))
                i += 2
            } else {
                out.append(items[i])
                i += 1
            }
        }
        return out
    }

    /// The signature of a chain step (tasks, groups and chords as Celery serialises them), frozen with ids.
    func frozenSignature(routes: TaskRoutes) -> (json: JSON, id: String) {
        switch self {
        case .task(var sig):
            let id = sig.freeze()
            return (sig.json, id)
        case .chain(let raw):
            let parts = Canvas.upgradingGroups(raw).map { $0.frozenSignature(routes: routes) }
            return (
                [
                    "task": "celery.chain", "args": [], "kwargs": ["tasks": .array(parts.map(\.json))], "options": [:],
                    "subtask_type": "chain", "immutable": false,
                ], parts.last?.id ?? ""
            )
        case .group(let items):
            let parts = items.map { $0.frozenSignature(routes: routes) }
            return (
                [
                    "task": "celery.group", "args": [], "kwargs": ["tasks": .array(parts.map(\.json))], "options": [:],
                    "subtask_type": "group", "immutable": false,
                ], parts.last?.id ?? ""
            )
        case .chord(let header, var body):
            let id = body.freeze()
            let parts = header.map { $0.frozenSignature(routes: routes).json }
            let group: JSON = [
                "task": "celery.group", "args": [], "kwargs": ["tasks": .array(parts)], "options": [:],
                "subtask_type": "group", "immutable": false,
            ]
            return (
                [
                    "task": "celery.chord", "args": [], "kwargs": ["header": group, "body": body.json, "kwargs": [:]],
                    "options": [:], "subtask_type": "chord", "immutable": false,
                ], id
            )
        }
    }

    /// The option a chord body carries when it replaced a task (`listingHeaderAsChildren`):
    /// `true` until the chord's join sends the body with its header's tuple in its place,
    /// which the body's message carries as `embed.celeris_children`. Python workers ignore it.
    public static let childrenOption = "celeris_children"

    /// The same workflow, a chord's body asking to list the chord's header as its record's
    /// `children`: the body of a replacement keeps the replaced task's id, so that task's
    /// final status shows the tasks its workflow ran (Celery stores the replaced task no record).
    ///
    ///     replaced.canvas.withResultId(message.id).listingHeaderAsChildren()
    public func listingHeaderAsChildren() -> Canvas {
        guard case .chord(let header, var body) = self else { return self }
        body.setOption(Canvas.childrenOption, true)
        return .chord(header, body)
    }

    /// The same workflow with its result task (last task, or chord body) given `id`.
    public func withResultId(_ id: String) -> Canvas {
        switch self {
        case .task(var sig):
            sig.setOption("task_id", .string(id))
            return .task(sig)
        case .chain(var items):
            if let last = items.popLast() { items.append(last.withResultId(id)) }
            return .chain(items)
        case .group:
            return self
        case .chord(let header, var body):
            body.setOption("task_id", .string(id))
            return .chord(header, body)
        }
    }

    /// Rebuild a canvas from a signature found in a message's embed; nil when it is
    /// malformed anywhere (see `init(decoding:at:)`).
    public init?(signature json: JSON) {
        guard let canvas = try? Canvas(decoding: json) else { return nil }
        self = canvas
    }

    /// Rebuild a canvas from a signature found in a message's embed, checking it all:
    /// every signature in it (`Signature(decoding:at:)`), a chain's or group's
    /// `kwargs.tasks` a list of signatures, a chord's `header` a group or a list of
    /// signatures and its `body` a signature. The error is the `ValueError` the task
    /// fails with, naming where the bad part is.
    ///
    ///     let next = try Canvas(decoding: step, at: "embed.chain[-1]")
    public init(decoding json: JSON, at path: String = "signature") throws(TaskFailure) {
        let sig = try Signature(decoding: json, at: path)
        func bad(_ what: String) -> TaskFailure {
            TaskFailure(type: "ValueError", message: "malformed signature at \(path): \(what)")
        }
        func list(_ v: JSON?, _ name: String) throws(TaskFailure) -> [Canvas] {
            guard let items = v?.arrayValue else {
                throw bad("\(name) must be a list of signatures, got \(Signature.typeName(v))")
            }
            var out: [Canvas] = []
            out.reserveCapacity(items.count)
            for (i, item) in items.enumerated() { out.append(try Canvas(decoding: item, at: "\(path).\(name)[\(i)]")) }
            return out
        }
        let kw = JSON.object(sig.kwargs)
        switch sig.subtaskType {
        case "chain": self = .chain(try list(kw["tasks"], "kwargs.tasks"))
        case "group": self = .group(try list(kw["tasks"], "kwargs.tasks"))
        case "chord":
            let header: [Canvas]
            if case .object = kw["header"] {
                guard case .group(let items) = try Canvas(decoding: kw["header"] ?? nil, at: path + ".kwargs.header")
                else { throw bad("kwargs.header must be a group or a list of signatures") }
                header = items
            } else {
                header = try list(kw["header"], "kwargs.header")
            }
            guard let body = kw["body"] else { throw bad("kwargs.body must be a signature, got nothing") }
            self = .chord(header, try Signature(decoding: body, at: path + ".kwargs.body"))
        default:
            self = .task(sig)
        }
    }
}
