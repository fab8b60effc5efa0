/// What `POST /tasks` asks for, read from the query and an optional JSON body:
/// `{"task": name, "args": [...], "kwargs": {...}, "queue": q, "priority": p}`.
/// With no body it is the tutorial's `create_task(task_length)`.
///
///     let submission = try TaskSubmission(request: request, defaultTaskLength: 5)
///     redis.send(bytes: TaskProducer.pushCommand(for: submission.message(routes: TaskRoutes()))) { _ in }
public struct TaskSubmission {
    public var task = "create_task"
    public var args: [JSON] = []
    public var kwargs: [(key: String, value: JSON)] = []
    /// The queue the client named; nil lets the routes decide.
    public var queue: String?
    public var priority = 0

    public init() {}

    /// A request the client must fix: the HTTP status (400 malformed JSON, 422 wrong
    /// shape or values) and the reason.
    public struct Invalid: Error, Equatable {
        public let status: Int
        public let detail: String

        public init(status: Int, detail: String) {
            self.status = status
            self.detail = detail
        }
    }

    /// Parse a request; `defaultTaskLength` fills `create_task` with no arguments.
    public init(request: HTTPRequest, defaultTaskLength: Int) throws(Invalid) {
        var taskLength = defaultTaskLength
        if let text = request.query["task_length"] {
            guard let n = Int(text), n >= 0, n <= 100_000 else {
                throw Invalid(status: 422, detail: "task_length must be an integer from 0 to 100000")
            }
            taskLength = n
        }
        let bodyIsBlank = request.body.allSatisfy { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
        if !bodyIsBlank {
            let json: JSON
            do {
                json = try JSONParser.parse(request.body)
            } catch {
                throw Invalid(status: 400, detail: "malformed JSON body: \(error)")
            }
            guard case .object(let fields) = json else {
                throw Invalid(status: 422, detail: "body must be a JSON object")
            }
            for (key, value) in fields {
                switch key {
                case "task":
                    guard let s = value.stringValue, !s.isEmpty, s.utf8.count <= 255 else {
                        throw Invalid(status: 422, detail: "'task' must be a non-empty string")
                    }
                    task = s
                case "args":
                    guard let a = value.arrayValue else {
                        throw Invalid(status: 422, detail: "'args' must be an array")
                    }
                    args = a
                case "kwargs":
                    guard let o = value.objectPairs else {
                        throw Invalid(status: 422, detail: "'kwargs' must be an object")
                    }
                    kwargs = o
                case "queue":
                    guard let s = value.stringValue, !s.isEmpty, s.utf8.count <= 200, !s.contains("\u{06}\u{16}") else {
                        throw Invalid(status: 422, detail: "'queue' must be a non-empty queue name")
                    }
                    queue = s
                case "priority":
                    guard let p = value.intValue, p >= 0, p <= 255 else {
                        throw Invalid(status: 422, detail: "'priority' must be an integer from 0 to 255")
                    }
                    priority = Int(p)
                default:
                    break
                }
            }
        }
        if task == "create_task" && args.isEmpty && !kwargs.contains(where: { $0.key == "task_length" }) {
            args = [.int(Int64(taskLength))]
        }
    }

    /// `/process`: `blob_path` from the query or a JSON body, optional `threshold` (0...1).
    public init(processRequest request: HTTPRequest) throws(Invalid) {
        var path = request.query["blob_path"]
        var threshold = request.query["threshold"].flatMap(Double.init)
        if request.query["threshold"] != nil && threshold == nil {
            throw Invalid(status: 422, detail: "threshold must be a number from 0 to 1")
        }
        if !request.body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            let json: JSON
            do { json = try JSONParser.parse(request.body) } catch {
                throw Invalid(status: 400, detail: "malformed JSON body: \(error)")
            }
            guard case .object = json else { throw Invalid(status: 422, detail: "body must be a JSON object") }
            if let p = json["blob_path"] {
                guard let s = p.stringValue else { throw Invalid(status: 422, detail: "'blob_path' must be a string") }
                path = s
            }
            if let t = json["threshold"] {
                guard let v = t.doubleValue else { throw Invalid(status: 422, detail: "'threshold' must be a number") }
                threshold = v
            }
        }
        guard let path, !path.isEmpty else { throw Invalid(status: 422, detail: "blob_path is required") }
        if let threshold, !(0...1).contains(threshold) {
            throw Invalid(status: 422, detail: "threshold must be from 0 to 1")
        }
        task = "fetch_documents_task"
        args = [.string(path)]
        kwargs = [("process", true), ("threshold", .double(threshold ?? 0.5))]
    }

    /// The Celery message to queue: the client's queue, else the routed one, else `celery`.
    public func message(routes: TaskRoutes) -> TaskMessage {
        TaskMessage(
            task: task, args: args, kwargs: kwargs, queue: queue ?? routes.queue(for: task) ?? "celery",
            priority: priority)
    }
}
