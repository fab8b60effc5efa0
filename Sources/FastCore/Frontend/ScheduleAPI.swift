import Logging

/// The frontend's periodic-task routes, on the loop's async Redis (one script call each):
/// `GET /schedule` (the schedulers' state and every entry), `PUT /schedule/{name}` (store a
/// run-time entry in `celeris:beat:dynamic`, validated as a schedule file's entry, and bump
/// `celeris:beat:dynamic:version`: 201 new, 200 replaced), `DELETE /schedule/{name}` (204; 404
/// when there is no such run-time entry). Every refusal is a JSON error; Redis down is 503.
///
///     let api = ScheduleAPI(redis: redis, maxPendingRedis: 10_000, logger: logger)
///     api.put(name: "tick", request: request, connection)
struct ScheduleAPI {
    let redis: AsyncRedis
    /// Redis commands awaiting replies before new work is refused with 503.
    let maxPendingRedis: Int
    let logger: Logger

    /// The longest entry name, in UTF-8 bytes.
    static let longestName = 200

    /// The whole state in one round trip (read only). Entry hashes are named from ARGV[1] and the
    /// names set, so the script reads keys it was not given: fine on one Redis, not on a cluster.
    static let stateScript = """
        -- KEYS: [1] leader, [2] leadership hash, [3] schedulers zset, [4] names set, [5] dynamic hash
        -- ARGV: [1] the entry hash prefix ("celeris:beat:entry:")
        -- returns: {leader id or nil, leadership HGETALL, schedulers ZRANGE WITHSCORES,
        --           {name, its entry hash's HGETALL} per member of names,
        --           flat name, JSON pairs of the dynamic entries that are not in names}
        local names = redis.call('SMEMBERS', KEYS[4])
        local entries = {}
        for i, name in ipairs(names) do entries[i] = {name, redis.call('HGETALL', ARGV[1] .. name)} end
        local dynamic = redis.call('HGETALL', KEYS[5])
        local pending = {}
        for i = 1, #dynamic, 2 do
          if redis.call('SISMEMBER', KEYS[4], dynamic[i]) == 0 then
            pending[#pending + 1] = dynamic[i]
            pending[#pending + 1] = dynamic[i + 1]
          end
        end
        return {redis.call('GET', KEYS[1]), redis.call('HGETALL', KEYS[2]),
                redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES'), entries, pending}
        """

    /// Store a run-time entry and bump the version, atomically.
    static let putScript = """
        -- KEYS: [1] dynamic hash, [2] dynamic version
        -- ARGV: [1] entry name, [2] the entry object's JSON
        -- returns: 1 a new entry, 0 one replaced
        local new = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        redis.call('INCR', KEYS[2])
        return new
        """

    /// Remove a run-time entry, bumping the version only when there was one.
    static let deleteScript = """
        -- KEYS: [1] dynamic hash, [2] dynamic version
        -- ARGV: [1] entry name
        -- returns: 1 removed, 0 no such entry (nothing written)
        local gone = redis.call('HDEL', KEYS[1], ARGV[1])
        if gone == 1 then redis.call('INCR', KEYS[2]) end
        return gone
        """

    /// `GET /schedule`.
    func list(_ connection: Connection) {
        let keys = [BeatKeys.leader, BeatKeys.leadership, BeatKeys.schedulers, BeatKeys.names, BeatKeys.dynamic]
        run(["EVAL", Self.stateScript, String(keys.count)] + keys + [BeatKeys.entry("")], connection) { reply in
            guard let view = ScheduleView.render(state: reply) else {
                return Self.answer(
                    connection, FrontendError(503, "broker_error", "unexpected reply to the schedule state script"))
            }
            connection.respond(status: 200, json: view)
        }
    }

    /// `PUT /schedule/{name}`: the body is an entry object as a schedule file spells it.
    func put(name: String, request: HTTPRequest, _ connection: Connection) {
        if let refused = Self.nameRefusal(name) { return Self.answer(connection, refused) }
        if let refused = RequestGuard.contentTypeRefusal(request) { return Self.answer(connection, refused) }
        let stored: String
        switch Self.validate(name: name, body: request.body) {
        case .failure(let e): return Self.answer(connection, FrontendError(400, "invalid_entry", e.description))
        case .success(let entry): stored = entry.jsonObject().serialized()
        }
        run(["EVAL", Self.putScript, "2", BeatKeys.dynamic, BeatKeys.dynamicVersion, name, stored], connection) {
            [logger] reply in
            let new = reply.integer == 1
            logger.info("schedule entry \(name) \(new ? "added" : "replaced")")
            connection.respond(status: new ? 201 : 200, body: stored)
        }
    }

    /// `DELETE /schedule/{name}`.
    func delete(name: String, _ connection: Connection) {
        if let refused = Self.nameRefusal(name) { return Self.answer(connection, refused) }
        run(["EVAL", Self.deleteScript, "2", BeatKeys.dynamic, BeatKeys.dynamicVersion, name], connection) {
            [logger] reply in
            guard reply.integer == 1 else {
                return Self.answer(connection, .notFound("no run-time schedule entry named \(name)"))
            }
            logger.info("schedule entry \(name) deleted")
            connection.respond(status: 204, body: "")
        }
    }

    /// 400 for a name that is empty, longer than `longestName` bytes or holds a `/` (the path is
    /// percent-decoded first, so `%2F` counts); nil for a good one.
    static func nameRefusal(_ name: String) -> FrontendError? {
        guard !name.isEmpty, name.utf8.count <= longestName, !name.utf8.contains(UInt8(ascii: "/")) else {
            return FrontendError(
                400, "invalid_name", "an entry name must have 1 to \(longestName) bytes and no \"/\"")
        }
        return nil
    }

    /// The entry a request body holds, checked as a schedule file's entry (its crontab too);
    /// the error names the place (`options.priority: must be an integer 0...9`).
    static func validate(name: String, body: [UInt8]) -> Result<ScheduleEntry, ScheduleFileError> {
        let entry: ScheduleEntry
        do {
            entry = try ScheduleFile.parseEntry(name: name, bytes: body)
        } catch {
            return .failure(error)
        }
        if case .crontab(let fields, _) = entry.schedule {
            do {
                _ = try Crontab(expression: fields)
            } catch {
                return .failure(ScheduleFileError(path: "schedule.crontab", message: error.description))
            }
        }
        return .success(entry)
    }

    /// Send `command` and hand its reply to `body`, answering 503 for Redis being down, busy or
    /// erring (as `POST /tasks` does).
    private func run(_ command: [String], _ connection: Connection, _ body: @escaping (RedisValue) -> Void) {
        guard redis.isConnected else { return Self.answer(connection, unavailable) }
        guard redis.pending < maxPendingRedis else {
            return Self.answer(
                connection,
                FrontendError(
                    503, "overloaded", "\(redis.pending) Redis commands pending; retry shortly",
                    headers: ["Retry-After": "1"]))
        }
        let down = unavailable
        let sent = redis.send(command) { reply in
            guard let reply else { return Self.answer(connection, down) }
            if let e = reply.errorMessage {
                return Self.answer(connection, FrontendError(503, "broker_error", e, headers: ["Retry-After": "1"]))
            }
            body(reply)
        }
        if !sent { Self.answer(connection, down) }
    }

    private var unavailable: FrontendError {
        FrontendError(
            503, "broker_unavailable", "Redis at \(redis.endpoint) is unreachable; retry shortly",
            headers: ["Retry-After": "1"])
    }

    private static func answer(_ c: Connection, _ e: FrontendError) {
        c.respond(status: e.status, json: e.body, headers: e.headers, close: e.close)
    }
}
