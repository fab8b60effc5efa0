import Foundation
import Logging

/// `DELETE /tasks/{id}` and `POST /tasks/{id}/revoke` (Celery's revoke broadcast, which
/// Celeris and Python workers both act on), and `GET /status/{id}` with its children.
/// One per frontend loop, used on its thread only.
///
///     let api = TaskAPI(redis: redis, maxPendingRedis: 10_000, logger: logger)
///     api.revoke(taskId: id, request: request, connection)   // 202 {"task_id": id, "revoked": true, …}
final class TaskAPI {
    private let loop: EventLoop
    private let redis: AsyncRedis
    /// Where `?wait=` long-polls get the task's states (nil: `?wait=` answers at once).
    private let watch: (any ResultSource)?
    private let maxPendingRedis: Int
    private let logger: Logger
    /// The Lamport clock revoke broadcasts carry (`clock` header), counted per app.
    @exclusivity(unchecked) private var revokeClock = 0
    /// `GET /status/{id}?wait=` requests waiting, by connection id.
    @exclusivity(unchecked) private var waiting: [UInt64: [Waiter]] = [:]
    /// Requests waiting now (for tests and numbers).
    var waitingRequests: Int { waiting.values.reduce(0) { $0 + $1.count } }

    /// The longest `?wait=` in seconds.
    static let maxWaitSeconds = 60.0

    /// One long-poll: its watch, its timer and the last state seen.
    private final class Waiter {
        let connection: Connection
        let taskId: String
        var token: ResultWatch.Token?
        var timer: LoopTimer?
        var last: ResultWatch.Update?
        var answered = false
        init(connection: Connection, taskId: String) {
            self.connection = connection
            self.taskId = taskId
        }
    }

    init(
        loop: EventLoop, redis: AsyncRedis, watch: (any ResultSource)?, maxPendingRedis: Int, logger: Logger
    ) {
        self.loop = loop
        self.redis = redis
        self.watch = watch
        self.maxPendingRedis = maxPendingRedis
        self.logger = logger
    }

    /// Signals a revoke with `terminate` may name (Celery accepts them with or without `SIG`).
    static let signals: Set<String> = ["SIGTERM", "SIGKILL", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2"]

    /// What a revoke asks for: `terminate` and `signal`, from the query or a JSON body (the body wins).
    ///
    ///     let (terminate, signal) = try TaskAPI.revokeOptions(request)
    static func revokeOptions(_ request: HTTPRequest) throws(TaskSubmission.Invalid) -> (
        terminate: Bool, signal: String
    ) {
        func invalid(_ detail: String) -> TaskSubmission.Invalid { .init(status: 422, detail: detail) }
        var terminate = false
        var signal = "SIGTERM"
        func readSignal(_ text: String) throws(TaskSubmission.Invalid) {
            let upper = text.uppercased()
            let name = upper.hasPrefix("SIG") ? upper : "SIG" + upper
            guard text.utf8.count <= 16, signals.contains(name) else {
                throw invalid("'signal' must be one of \(signals.sorted().joined(separator: ", "))")
            }
            signal = name
        }
        if let t = request.query["terminate"] {
            switch t.lowercased() {
            case "", "true", "1", "yes", "on": terminate = true
            case "false", "0", "no", "off": terminate = false
            default: throw invalid("'terminate' must be true or false")
            }
        }
        if let s = request.query["signal"] { try readSignal(s) }
        let blank = request.body.allSatisfy { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
        if !blank {
            let json: JSON
            do { json = try JSONParser.parse(request.body) } catch {
                throw .init(status: 400, detail: "malformed JSON body: \(error)")
            }
            guard case .object = json else { throw invalid("body must be a JSON object") }
            switch json["terminate"] {
            case nil, .null?: break
            case .bool(let b)?: terminate = b
            default: throw invalid("'terminate' must be true or false")
            }
            switch json["signal"] {
            case nil, .null?: break
            case .string(let s)?: try readSignal(s)
            default: throw invalid("'signal' must be a signal name such as SIGTERM")
            }
        }
        return (terminate, signal)
    }

    /// Whether a token's `scopes` may revoke: revoking reaches every client's tasks, so it
    /// takes the whole `tasks` scope (or `*`); `tasks:NAME` is not enough. nil: auth off.
    ///
    ///     TaskAPI.mayRevoke(scopes: ["tasks:add"])  // false
    static func mayRevoke(scopes: [String]?) -> Bool {
        guard let scopes else { return true }
        return scopes.contains("*") || scopes.contains("tasks")
    }

    /// PUBLISH Celery's revoke broadcast and answer 202 once Redis took it. `scopes`: the
    /// token's (nil with auth off); see `mayRevoke`.
    func revoke(taskId: String, request: HTTPRequest, scopes: [String]?, _ connection: Connection) {
        guard Self.mayRevoke(scopes: scopes) else {
            return answer(
                connection, FrontendError(403, "forbidden", "revoking a task needs the whole 'tasks' scope"))
        }
        guard TaskSubmission.isValidTaskId(taskId) else { return answer(connection, .notFound("no such task id")) }
        if let refused = RequestGuard.contentTypeRefusal(request) { return answer(connection, refused) }
        let options: (terminate: Bool, signal: String)
        do { options = try Self.revokeOptions(request) } catch {
            return answer(connection, .invalid(error, invalidCode: "invalid_revoke"))
        }
        guard redis.isConnected else { return brokerUnavailable(connection) }
        guard redis.pending < maxPendingRedis else { return overloaded(connection) }
        revokeClock += 1
        let command = ControlBroadcast.revoke(
            taskId, terminate: options.terminate, signal: options.signal, db: redis.endpoint.db, clock: revokeClock,
            now: CeleryTime.now())
        let sent = redis.send(command) { [weak self] reply in
            guard let reply else {
                self?.brokerUnavailable(connection)
                return
            }
            if let e = reply.errorMessage {
                self?.answer(connection, FrontendError(503, "broker_error", e, headers: ["Retry-After": "1"]))
                return
            }
            self?.logger.info(
                "Revoke of \(taskId) (terminate: \(options.terminate)) sent to \(reply.integer ?? 0) workers")
            connection.respond(
                status: 202,
                json: [
                    "task_id": .string(taskId), "revoked": true, "terminate": .bool(options.terminate),
                    "signal": .string(options.signal),
                ])
        }
        if !sent { brokerUnavailable(connection) }
    }

    /// `?wait=S`: seconds, more than 0 and at most `maxWaitSeconds`; nil when absent.
    static func waitSeconds(_ request: HTTPRequest) throws(TaskSubmission.Invalid) -> Double? {
        guard let text = request.query["wait"] else { return nil }
        guard let s = TaskSubmission.decimal(text), s > 0, s <= maxWaitSeconds else {
            throw .init(status: 422, detail: "'wait' must be a number of seconds, more than 0 and at most 60")
        }
        return s
    }

    /// `GET /status/{id}`: the record's view, with its children's (one MGET) when it lists any.
    /// With `?wait=S` the answer waits until the task is in a final state (answered at
    /// once), or S seconds pass (answered with its state then): a long-poll on the result
    /// watch and a loop timer, with no polling of Redis.
    func status(taskId: String, request: HTTPRequest, _ connection: Connection) {
        guard !taskId.isEmpty, taskId.utf8.count <= 255, !taskId.utf8.contains(UInt8(ascii: "/")) else {
            return answer(connection, .notFound("no such task id"))
        }
        let wait: Double?
        do { wait = try Self.waitSeconds(request) } catch {
            return answer(connection, .invalid(error, invalidCode: "invalid_wait"))
        }
        guard let wait, let watch else { return status(taskId: taskId, connection) }
        let waiter = Waiter(connection: connection, taskId: taskId)
        let token = watch.watch(taskId) { [weak self, weak waiter] update in
            guard let waiter, !waiter.answered else { return }
            waiter.last = update
            if update.isFinal { self?.finish(waiter) }
        }
        guard let token else {
            return answer(
                connection,
                FrontendError(
                    503, "overloaded", "this loop follows as many tasks as it may; retry shortly",
                    headers: ["Retry-After": "1"]))
        }
        waiter.token = token
        waiting[connection.id, default: []].append(waiter)
        waiter.timer = loop.timer(after: UInt64((wait * 1000).rounded(.up))) { [weak self, weak waiter] in
            if let waiter { self?.finish(waiter) }
        }
    }

    /// Answer a long-poll with the last state it saw (read now when it saw none yet).
    private func finish(_ waiter: Waiter) {
        guard !waiter.answered else { return }
        waiter.answered = true
        stop(waiter)
        let id = waiter.connection.id
        waiting[id]?.removeAll { $0 === waiter }
        if waiting[id]?.isEmpty == true { waiting[id] = nil }
        if let last = waiter.last {
            answerWithChildren(record: last.record, waiter.connection)
        } else {
            status(taskId: waiter.taskId, waiter.connection)
        }
    }

    private func stop(_ waiter: Waiter) {
        if let token = waiter.token { watch?.unwatch(token) }
        waiter.token = nil
        waiter.timer?.cancel()
        waiter.timer = nil
    }

    /// The client closed the connection: its long-polls stop watching.
    func connectionClosed(_ id: UInt64) {
        guard let waiters = waiting.removeValue(forKey: id) else { return }
        for w in waiters {
            w.answered = true
            stop(w)
        }
    }

    /// Graceful shutdown: every long-poll is answered now with the state it has.
    func shutdown() {
        for w in waiting.values.flatMap({ $0 }) { finish(w) }
    }

    /// `GET /status/{id}` answered from a read now.
    private func status(taskId: String, _ connection: Connection) {
        guard redis.pending < maxPendingRedis else { return overloaded(connection) }
        let sent = redis.send(["GET", ResultRecord.key(taskId)]) { [weak self] reply in
            guard let reply else {
                self?.brokerUnavailable(connection)
                return
            }
            if let e = reply.errorMessage {
                self?.answer(connection, FrontendError(503, "broker_error", e, headers: ["Retry-After": "1"]))
                return
            }
            self?.answerWithChildren(record: reply.text, connection)
        }
        if !sent { brokerUnavailable(connection) }
    }

    /// Answer `record`'s view, reading its children's records first when it has any
    /// (a failed read answers without them rather than not at all).
    /// The record is parsed once; at most `TaskStatusView.maxChildren` children are read
    /// (`children_total` says how many it lists when more).
    func answerWithChildren(record: String?, _ connection: Connection) {
        let (view, children, total) = TaskStatusView.parse(record: record)
        guard !children.isEmpty, redis.pending < maxPendingRedis else {
            return connection.respond(status: 200, json: view)
        }
        let sent = redis.send(["MGET"] + children.map { ResultRecord.key($0.taskId) }) { reply in
            let records = reply?.elements ?? []
            guard records.count == children.count else { return connection.respond(status: 200, json: view) }
            let entries = zip(children, records).map { (child: $0.0, record: $0.1.text) }
            connection.respond(status: 200, json: TaskStatusView.render(view, children: entries, total: total))
        }
        if !sent { connection.respond(status: 200, json: view) }
    }

    // MARK: - answers

    private func answer(_ c: Connection, _ e: FrontendError) { c.respond(e) }

    private func overloaded(_ c: Connection) {
        c.respond(.overloaded(pending: redis.pending))
    }

    private func brokerUnavailable(_ c: Connection) {
        c.respond(.brokerUnavailable(redis.endpoint))
    }
}
