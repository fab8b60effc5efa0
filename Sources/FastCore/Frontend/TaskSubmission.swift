import Foundation

/// What `POST /tasks` asks for, read from the query and an optional JSON body:
/// `{"task": name, "args": [...], "kwargs": {...}, "queue": q, "priority": p}` and
/// Celery's send options `countdown`, `eta`, `expires`, `ignore_result`, `task_id`,
/// `link`, `link_error` (all but the links also from the query; the body wins).
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
    /// Seconds from sending before a worker may start it (Celery's `countdown`), 0...`maxSeconds`.
    public var countdown: Double?
    /// The earliest time (epoch seconds) a worker may start it (Celery's `eta`).
    public var eta: Double?
    /// When it is dropped (REVOKED) if no worker started it by then (Celery's `expires`).
    public var expires: SendOptions.Expiry?
    /// Store no result (Celery's `ignore_result`).
    public var ignoreResult = false
    /// The caller's task id (nil: a new uuid4).
    public var taskId: String?
    /// Tasks sent with the result when it succeeds (Celery's `link`).
    public var link: [Signature] = []
    /// Tasks sent with the task's id when it fails (Celery's `link_error`).
    public var linkError: [Signature] = []

    /// The longest `countdown` or relative `expires` accepted: 100 years, in seconds.
    public static let maxSeconds: Double = 3_155_760_000
    /// Most signatures `link` or `link_error` may hold.
    public static let maxLinks = 16

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
        for key in Self.queryOptions {
            if let text = request.query[key] { try readOption(key, Self.queryValue(key, text)) }
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
                case "link", "link_error":
                    let signatures = try Self.signatures(key, value)
                    if key == "link" { link = signatures } else { linkError = signatures }
                default:
                    try readOption(key, value)
                }
            }
        }
        if countdown != nil && eta != nil {
            throw Invalid(status: 422, detail: "give 'countdown' or 'eta', not both")
        }
        if task == "create_task" && args.isEmpty && !kwargs.contains(where: { $0.key == "task_length" }) {
            args = [.int(Int64(taskLength))]
        }
    }

    /// The options also read from the query string.
    static let queryOptions = ["queue", "priority", "countdown", "eta", "expires", "ignore_result", "task_id"]

    /// A query string's text as the JSON a body would carry for `key`: numbers for
    /// `priority`/`countdown` (and `eta`/`expires` when numeric), booleans for `ignore_result`.
    private static func queryValue(_ key: String, _ text: String) throws(Invalid) -> JSON {
        switch key {
        case "priority", "countdown":
            return decimal(text).map(JSON.double) ?? .string(text)
        case "eta", "expires":
            return decimal(text).map(JSON.double) ?? .string(text)
        case "ignore_result":
            switch text.lowercased() {
            case "true", "1", "yes", "on", "": return true
            case "false", "0", "no", "off": return false
            default: throw Invalid(status: 422, detail: "'ignore_result' must be true or false")
            }
        default:
            return .string(text)
        }
    }

    /// A plain decimal number (`-12`, `3.5`, `1e3`): no `nan`, `inf`, hex or blanks; finite.
    static func decimal(_ text: String) -> Double? {
        let b = Array(text.utf8)
        guard !b.isEmpty, b.count <= 64 else { return nil }
        var i = 0
        if b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") { i += 1 }
        var digits = 0
        while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1; digits += 1 }
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1; digits += 1 }
        }
        guard digits > 0 else { return nil }
        if i < b.count, b[i] | 0x20 == UInt8(ascii: "e") {
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") { i += 1 }
            var exponent = 0
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1; exponent += 1 }
            guard exponent > 0 else { return nil }
        }
        guard i == b.count, let v = Double(text), v.isFinite else { return nil }
        return v
    }

    /// One option from the body (or the query, as JSON); unknown keys are ignored.
    private mutating func readOption(_ key: String, _ value: JSON) throws(Invalid) {
        func invalid(_ detail: String) -> Invalid { Invalid(status: 422, detail: detail) }
        switch key {
        case "queue":
            guard let s = value.stringValue, !s.isEmpty, s.utf8.count <= 200, !s.contains("\u{06}\u{16}") else {
                throw invalid("'queue' must be a non-empty queue name")
            }
            queue = s
        case "priority":
            guard let p = value.intValue, p >= 0, p <= 255 else {
                throw invalid("'priority' must be an integer from 0 to 255")
            }
            priority = Int(p)
        case "countdown":
            guard let c = value.doubleValue, c.isFinite, c >= 0, c <= Self.maxSeconds else {
                throw invalid("'countdown' must be a number of seconds from 0 to \(Int(Self.maxSeconds))")
            }
            countdown = c
        case "eta":
            switch value {
            case .null: eta = nil
            case .string(let s):
                guard let t = Self.isoTime(s) else {
                    throw invalid("'eta' must be an ISO 8601 time (2026-01-02T03:04:05Z) from year 1 to 9999")
                }
                eta = t
            default:
                guard let t = value.doubleValue, Self.isDatetime(t) else {
                    throw invalid("'eta' must be an ISO 8601 time or epoch seconds from year 1 to 9999")
                }
                eta = t
            }
        case "expires":
            switch value {
            case .null: expires = nil
            case .string(let s):
                guard let t = Self.isoTime(s) else {
                    throw invalid("'expires' must be seconds from now or an ISO 8601 time from year 1 to 9999")
                }
                expires = .at(Date(timeIntervalSince1970: t))
            default:
                guard let s = value.doubleValue, s.isFinite, abs(s) <= Self.maxSeconds else {
                    throw invalid(
                        "'expires' must be seconds from now (at most \(Int(Self.maxSeconds))) or an ISO 8601 time")
                }
                expires = .after(s)
            }
        case "ignore_result":
            guard case .bool(let b) = value else { throw invalid("'ignore_result' must be true or false") }
            ignoreResult = b
        case "task_id":
            guard let s = value.stringValue, Self.isValidTaskId(s) else {
                throw invalid("'task_id' must be 1 to 255 bytes with no '/' and no control characters")
            }
            taskId = s
        default:
            break
        }
    }

    /// Whether `id` may name a task: 1...255 bytes, no `/`, no control characters.
    ///
    ///     TaskSubmission.isValidTaskId("report-42")  // true
    public static func isValidTaskId(_ id: String) -> Bool {
        let bytes = id.utf8
        guard !bytes.isEmpty, bytes.count <= 255 else { return false }
        return !id.unicodeScalars.contains { $0 == "/" || $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
    }

    /// Whether Python can hold `epoch` as a datetime (year 1 to 9999-12-31T23:59:59).
    static func isDatetime(_ epoch: Double) -> Bool {
        epoch.isFinite && epoch >= -62_135_596_800 && epoch < 253_402_300_800
    }

    /// `link`/`link_error`: one signature object or an array of them, each a plain task
    /// signature (no canvas, no links of its own: their tasks would escape the policy).
    private static func signatures(_ key: String, _ value: JSON) throws(Invalid) -> [Signature] {
        let items: [JSON]
        switch value {
        case .null: return []
        case .array(let a): items = a
        default: items = [value]
        }
        guard items.count <= maxLinks else {
            throw Invalid(status: 422, detail: "'\(key)' may hold at most \(maxLinks) signatures")
        }
        var out: [Signature] = []
        for (i, item) in items.enumerated() {
            let at = value.arrayValue == nil ? key : "\(key)[\(i)]"
            let sig: Signature
            do {
                sig = try Signature(decoding: item, at: at)
            } catch {
                throw Invalid(
                    status: 422,
                    detail:
                        "'\(key)' must be a signature {\"task\", \"args\", \"kwargs\", \"options\"}: \(Self.reason(error))"
                )
            }
            guard sig.task.utf8.count <= 255 else {
                throw Invalid(status: 422, detail: "\(at): task must be at most 255 bytes")
            }
            guard sig.subtaskType == nil else {
                throw Invalid(
                    status: 422, detail: "\(at): only task signatures may be linked, not a \(sig.subtaskType ?? "")")
            }
            for nested in ["link", "link_error", "chain", "chord", "callbacks", "errbacks"]
            where sig.options[nested] != nil {
                throw Invalid(status: 422, detail: "\(at): options.\(nested) is not accepted (link tasks directly)")
            }
            // An exchange would route the linked task past the queue checks.
            if let exchange = sig.options["exchange"], exchange != .null, exchange != "" {
                throw Invalid(status: 422, detail: "\(at): options.exchange is not accepted (name a queue)")
            }
            for key in ["queue", "routing_key"] {
                if let v = sig.options[key], v != .null, v.stringValue?.isEmpty != false {
                    throw Invalid(status: 422, detail: "\(at): options.\(key) must be a non-empty string")
                }
            }
            if let id = sig.options["task_id"]?.stringValue, !isValidTaskId(id) {
                throw Invalid(
                    status: 422,
                    detail: "\(at): options.task_id must be 1 to 255 bytes with no '/' and no control characters")
            }
            try checkLinkOptions(sig.options, at: at)
            out.append(sig)
        }
        return out
    }

    /// The options a linked signature may carry. Anything else (`headers`, `exchange`,
    /// `reply_to`, …) is refused: Python Celery's `apply_async` lets `options.headers`
    /// overwrite the message's `task` header, which would run any registered task.
    public static let linkOptions: Set<String> = [
        "queue", "routing_key", "priority", "countdown", "eta", "expires", "task_id", "ignore_result", "immutable",
    ]

    /// A link's options: only `linkOptions`, each range-checked as the task's own option is
    /// (null leaves it unset).
    private static func checkLinkOptions(_ options: JSON, at: String) throws(Invalid) {
        guard let pairs = options.objectPairs else { return }
        var scratch = TaskSubmission()
        for (key, value) in pairs {
            guard linkOptions.contains(key) else {
                throw Invalid(
                    status: 422,
                    detail:
                        "\(at): options.\(key) is not accepted (accepted: \(linkOptions.sorted().joined(separator: ", ")))"
                )
            }
            if value == .null { continue }
            switch key {
            case "queue", "routing_key", "task_id":
                continue  // checked above (shape) and by the policy (allowed queues)
            case "immutable":
                guard case .bool = value else {
                    throw Invalid(status: 422, detail: "\(at): options.immutable must be true or false")
                }
            default:
                do { try scratch.readOption(key, value) } catch {
                    throw Invalid(status: 422, detail: "\(at) options: \(error.detail)")
                }
            }
        }
        if scratch.countdown != nil && scratch.eta != nil {
            throw Invalid(status: 422, detail: "\(at): give options 'countdown' or 'eta', not both")
        }
    }

    /// A signature error's text without its exception type.
    private static func reason(_ failure: TaskFailure) -> String {
        failure.arguments.first?.stringValue ?? failure.description
    }

    /// ISO 8601 as Python's `datetime.fromisoformat` reads it: `YYYY-MM-DD`, optionally
    /// `T` (or a space) and `HH:MM[:SS[.ffffff]]`, optionally `Z` or `±HH:MM` (none: UTC).
    /// Epoch seconds, or nil when malformed or outside year 1...9999.
    ///
    ///     TaskSubmission.isoTime("1970-01-01T00:01:00Z")  // 60
    public static func isoTime(_ text: String) -> Double? {
        let b = Array(text.utf8)
        guard b.count >= 10, b.count <= 40 else { return nil }
        func num(_ from: Int, _ len: Int) -> Int? {
            guard from + len <= b.count else { return nil }
            var v = 0
            for c in b[from..<(from + len)] {
                guard c >= 0x30, c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            return v
        }
        guard let year = num(0, 4), b[4] == UInt8(ascii: "-"), let month = num(5, 2), b[7] == UInt8(ascii: "-"),
            let day = num(8, 2), (1...9999).contains(year), (1...12).contains(month)
        else { return nil }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard (1...monthDays).contains(day) else { return nil }
        var seconds = 0.0
        var i = 10
        if i < b.count, b[i] == UInt8(ascii: "T") || b[i] == UInt8(ascii: " ") {
            guard let h = num(i + 1, 2), b.count > i + 3, b[i + 3] == UInt8(ascii: ":"), let m = num(i + 4, 2),
                h < 24, m < 60
            else { return nil }
            seconds = Double(h * 3600 + m * 60)
            i += 6
            if i < b.count, b[i] == UInt8(ascii: ":") {
                guard let s = num(i + 1, 2), s < 60 else { return nil }
                seconds += Double(s)
                i += 3
                if i < b.count, b[i] == UInt8(ascii: ".") {
                    i += 1
                    var scale = 0.1
                    let start = i
                    while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                        seconds += Double(b[i] - 0x30) * scale
                        scale /= 10
                        i += 1
                    }
                    guard i > start, i - start <= 9 else { return nil }
                }
            }
        }
        if i < b.count {
            if b[i] == UInt8(ascii: "Z") {
                i += 1
            } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
                guard let oh = num(i + 1, 2), b.count > i + 3, b[i + 3] == UInt8(ascii: ":"), let om = num(i + 4, 2),
                    oh < 24, om < 60
                else { return nil }
                seconds -= Double((oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "+") ? 1 : -1))
                i += 6
            } else {
                return nil
            }
        }
        guard i == b.count else { return nil }
        // Days from 1970-01-01 (Howard Hinnant's `days_from_civil`).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        let epoch = Double(days) * 86400 + seconds
        return isDatetime(epoch) ? epoch : nil
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

    /// Celery's send options this submission carries.
    public var sendOptions: SendOptions {
        SendOptions(
            queue: queue, priority: priority, countdown: countdown, eta: eta.map { Date(timeIntervalSince1970: $0) },
            expires: expires, ignoreResult: ignoreResult, taskId: taskId, link: link, linkError: linkError)
    }

    /// Every task name the submission may make a worker run: the task and the linked ones.
    public var taskNames: [String] { [task] + link.map(\.task) + linkError.map(\.task) }

    /// The Celery message to queue (`now`: epoch seconds, for `countdown` and relative
    /// `expires`): the client's queue, else the routed one, else `celery`; the send
    /// options written as Celery writes them (`SendOptions.message`).
    public func message(routes: TaskRoutes, now: Double = CeleryTime.now()) -> TaskMessage {
        do {
            return try sendOptions.message(task: task, args: args, kwargs: kwargs, routes: routes, now: now)
        } catch {
            // Not reached for a parsed submission (its times are range-checked, a countdown
            // of at most 100 years from a clock before year 9899); a hand-made one keeps its
            // task and the options whose times are valid.
            var options = sendOptions
            options.eta = nil
            options.countdown = nil
            options.expires = nil
            return (try? options.message(task: task, args: args, kwargs: kwargs, routes: routes, now: now))
                ?? TaskMessage(
                    task: task, args: args, kwargs: kwargs, queue: queue ?? routes.queue(for: task) ?? "celery",
                    priority: min(max(priority, 0), 255), id: taskId ?? TaskMessage.newId())
        }
    }

    /// The `expiration` property kombu adds when the task expires (milliseconds left, as text).
    public func expiration(now: Double) -> String? { sendOptions.expiration(now: now) }
}
