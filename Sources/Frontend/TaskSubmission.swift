import FastCore

/// What `POST /tasks` asks for, read from the query and an optional JSON body:
/// `{"task": name, "args": [...], "kwargs": {...}, "queue": q, "priority": p}`.
/// With no body it is the tutorial's `create_task(task_length)`.
struct TaskSubmission {
    var task = "create_task"

    init() {}
    var args: [JSON] = []
    var kwargs: [(key: String, value: JSON)] = []
    /// The queue the client named; nil lets the routes decide.
    var queue: String?
    var priority = 0

    /// A request the client must fix: the HTTP status and the reason.
    struct Invalid: Error {
        let status: Int
        let detail: String
    }

    /// Parse a request; `defaultTaskLength` fills `create_task` with no arguments.
    init(request: HTTPRequest, defaultTaskLength: Int) throws(Invalid) {
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
    init(processRequest request: HTTPRequest) throws(Invalid) {
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
    func message(routes: TaskRoutes) -> TaskMessage {
        TaskMessage(
            task: task, args: args, kwargs: kwargs, queue: queue ?? routes.queue(for: task) ?? "celery",
            priority: priority)
    }
}

/// `GET /status/{id}` as the scaling guide's FastAPI endpoint answers it,
/// plus Celery's own `state`.
enum TaskStatusView {
    static func render(record: String?) -> JSON {
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
