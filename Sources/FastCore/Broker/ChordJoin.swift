import Foundation
import Logging

/// Celery 5.7's Redis chord join, with its own Lua scripts: every header
/// task adds its result to `<gid>.j` (deduplicated by `.d`); the finisher that
/// sees the count reach `.s` (+ `.t`) wins the claim `.c`, reads the results,
/// sends the body with them, and cleans up, leaving `.c` = "done". Python and
/// Celeris workers can finish parts of the same chord.
enum ChordJoin {
    /// Celery's `on_chord_part_return` for one header task.
    /// KEYS: `.j` (results), `.t` (total adjustment), `.s` (size), `.d` (dedupe set), the group
    /// key, `.c` (finisher claim). ARGV: task id, encoded result, "1" when results are ordered
    /// by header index, the index (score), result expiry, group expiry, claim expiry, claim token.
    /// Returns `{ready, totaldiff, size, claimed}`: `{-1, 0, 0, 0}` for a chord already done;
    /// `claimed` 1 when this call won the right to send the body.
    static let partReturnScript = RedisScript(
        """
        local jkey, tkey, skey, dkey, gkey, ckey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
        local tid, value, ordered, score = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
        local expires, group_expires = tonumber(ARGV[5]), tonumber(ARGV[6])
        local claim_expires = tonumber(ARGV[7])
        local claim_token = ARGV[8]

        -- Prevent late duplicates from recreating chord state after successful cleanup.
        local done_marker = redis.call('GET', ckey)
        if done_marker == 'done' then
            return {-1, 0, 0, 0}
        end

        -- Key the check on the task id and header index, so it doesn't merge two
        -- header entries that share the task id of a reused frozen signature.
        local member = tid .. ':' .. score
        if redis.call('SISMEMBER', dkey, member) == 0 then
            if ordered == '1' then
                redis.call('ZADD', jkey, score, value)
            else
                redis.call('RPUSH', jkey, value)
            end
            redis.call('SADD', dkey, member)
        end
        local readycount
        if ordered == '1' then
            readycount = redis.call('ZCOUNT', jkey, '-inf', '+inf')
        else
            readycount = redis.call('LLEN', jkey)
        end
        if expires > 0 then
            for _, key in ipairs({jkey, tkey, skey, dkey}) do
                redis.call('EXPIRE', key, expires)
            end
            if group_expires > 0 then
                redis.call('EXPIRE', gkey, group_expires)
            end
        end

        local totaldiff = redis.call('GET', tkey)
        local size = redis.call('GET', skey)
        local claimed = 0
        if size and readycount == tonumber(size) + tonumber(totaldiff or 0) then
            -- A finisher trying again (its body's enqueue failed) still holds its claim.
            if redis.call('SET', ckey, claim_token, 'NX', 'EX', claim_expires)
                or redis.call('GET', ckey) == claim_token then
                claimed = 1
            end
        end

        return {readycount, totaldiff, size, claimed}
        """)
    /// KEYS: `.c`, `.s`. ARGV: the claim token, claim expiry. Extends this finisher's claim, or
    /// takes a lapsed one while the chord still exists. Returns 1 when the claim is this
    /// finisher's, else 0.
    static let claimExtendScript = RedisScript(
        """
        local ckey, skey = KEYS[1], KEYS[2]
        local token = ARGV[1]
        local expires = tonumber(ARGV[2])
        if redis.call('GET', ckey) == token then
            return redis.call('EXPIRE', ckey, expires)
        end
        if not redis.call('GET', ckey) and redis.call('EXISTS', skey) == 1 then
            return redis.call('SET', ckey, token, 'EX', expires, 'NX') and 1 or 0
        end
        return 0
        """)
    /// KEYS: `.c`, `.j`, `.t`, `.s`, `.d`. ARGV: the finisher's claim token, seconds to keep
    /// the "done" marker, then the body's commands, each as its argument count and its
    /// arguments. While the claim is this finisher's, runs the commands (the body's
    /// enqueue), then deletes the chord's state and marks it done, in one script: a command
    /// Redis refuses (out of memory, read-only, a wrong type) stops it before the chord is
    /// marked done, so the finisher can try again. Returns 1 when sent, 0 when the claim is
    /// another's.
    static let sendBodyScript = RedisScript(
        """
        local ckey = KEYS[1]
        if redis.call('GET', ckey) ~= ARGV[1] then
            return 0
        end
        local i = 3
        while i <= #ARGV do
            local n = tonumber(ARGV[i])
            redis.call(unpack(ARGV, i + 1, i + n))
            i = i + n + 1
        end
        redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
        local done_expires = tonumber(ARGV[2])
        if done_expires and done_expires > 0 then
            redis.call('SET', ckey, 'done', 'EX', done_expires)
        end
        return 1
        """)
    static let claimSeconds = 10
    static let doneSeconds = 300

    static func key(_ gid: String, _ suffix: String = "") -> String { Canvas.setPrefix + gid + suffix }

    /// KEYS: the body's result key. ARGV: record, status update, expiry (0: never). Stores and publishes
    /// PROGRESS unless the body already finished. Returns 1 when stored, else 0.
    static let progressScript = RedisScript(
        """
        local cur = redis.call('GET', KEYS[1])
        if cur and not string.find(cur, '"status": "PROGRESS"', 1, true) then return 0 end
        local expires = tonumber(ARGV[3])
        if expires and expires > 0 then
            redis.call('SET', KEYS[1], ARGV[1], 'EX', expires)
        else
            redis.call('SET', KEYS[1], ARGV[1])
        end
        redis.call('PUBLISH', KEYS[1], ARGV[1])
        redis.call('PUBLISH', 'task_status', ARGV[2])
        return 1
        """)

    /// "k of N parts in" on a chord body's result, labelled as the body asked (`ChordProgress`).
    static func progress(
        _ id: String, _ labels: ChordProgress, ready: Int, size: Int, now: Double,
        expires: Int = ResultRecord.expirySeconds, on redis: RedisConnection
    ) throws(RedisError) {
        let record = ResultRecord(taskId: id, state: .progress, result: labels.meta(ready: ready, size: size))
        let update = labels.update(taskId: id, ready: ready, size: size, now: now)
        try progressScript.run(
            on: redis, keys: [ResultRecord.key(id)],
            args: [record.serialized(), update.serialized(), String(expires)])
    }

    /// Count one part in; if it completes the chord and we win the claim, send
    /// the body (or fail it with ChordError). Returns (ready, size) for progress.
    /// `expires`: seconds the chord's keys and records live (`--result-expires`; 0: never).
    @discardableResult
    static func partReturn(
        _ p: ChordPart, on redis: RedisConnection, routes: TaskRoutes, logger: Logger, now: Double = CeleryTime.now(),
        expires: Int = ResultRecord.expirySeconds
    )
        throws(RedisError)
        -> (ready: Int, size: Int)
    {
        let g = p.groupId
        let token = p.claimToken
        let reply = try partReturnScript.run(
            on: redis, keys: [key(g, ".j"), key(g, ".t"), key(g, ".s"), key(g, ".d"), key(g), key(g, ".c")],
            args: [
                p.taskId, p.encoded, "1", p.groupIndex.map(String.init) ?? "+inf", String(expires),
                String(expires), String(claimSeconds), token,
            ])
        let parts = reply.elements ?? []
        let ready = Int(parts.first?.integer ?? -1)
        guard ready >= 0 else { return (0, 0) }
        let size = Int(parts.count > 2 ? parts[2].text ?? "0" : "0") ?? 0
        // About fifty progress writes per chord (and the last part), not one per part.
        let step = max(1, size / 50)
        if let labels = ChordProgress(option: p.callback.options["celeris_progress"]), let id = p.callback.id,
            ready % step == 0 || ready >= size
        {
            try progress(id, labels, ready: ready, size: size, now: now, expires: expires, on: redis)
        }
        guard parts.count > 3, parts[3].integer == 1 else { return (ready, size) }
        // We won the claim: gather the header's results in group order.
        let stored = try redis.command("ZRANGE", key(g, ".j"), "0", "-1").elements ?? []
        var results: [JSON] = []
        var members: [JSON] = []
        for entry in stored {
            guard let row = entry.bytes.flatMap({ try? JSONParser.parse($0) })?.arrayValue, row.count == 4 else {
                continue
            }
            let state = row[2].stringValue ?? ""
            if state == TaskState.failure.rawValue || state == TaskState.revoked.rawValue {
                let cause = TaskFailure(
                    type: row[3]["exc_type"]?.stringValue ?? "Exception",
                    arguments: row[3]["exc_message"]?.arrayValue ?? [],
                    module: row[3]["exc_module"]?.stringValue ?? "builtins")
                let message = "Dependency \(row[1].stringValue ?? "?") raised \(cause)"
                logger.error("chord \(g) failed: \(message)")
                let record = ResultRecord(
                    taskId: p.callback.id ?? TaskMessage.newId(), state: .failure,
                    result: TaskFailure(type: "ChordError", message: message, module: "celery.exceptions").resultJSON,
                    dateDone: now, groupId: g, expires: expires)
                try atomically(record.storeCommands() + [["DEL", key(g, ".s")]], on: redis)
                return (ready, size)
            }
            results.append(row[3])
            if let id = row[1].stringValue { members.append(Canvas.childTuple(id)) }
        }
        let extended = try claimExtendScript.run(
            on: redis, keys: [key(g, ".c"), key(g, ".s")], args: [token, String(claimSeconds)])
        guard extended.integer == 1 else {
            logger.warning("chord \(g): dispatch claim lost; callback not sent by this worker")
            return (ready, size)
        }
        var body = p.callback
        let rest = body.options["chain"]?.arrayValue ?? []
        body.options = body.options.setting("chain", nil)
        if body.options[Canvas.childrenOption] == true {
            // A replacement's body lists the header it joins (`Canvas.listingHeaderAsChildren`).
            body.options = body.options.setting(Canvas.childrenOption, [Canvas.groupTuple(g, members)])
        }
        var producer = TaskProducer()
        var out: [[String]] = []
        _ = Canvas.task(body).emit(
            into: &out, producer: &producer, routes: routes, parent: p.header, partial: .array(results), chain: rest,
            group: nil)
        // The body's enqueue and the chord's "done" in one script: the chord is never marked
        // done with its body lost (a refused enqueue throws, and the finisher tries again).
        var args = [token, String(doneSeconds)]
        for command in out where command != ["MULTI"] && command != ["EXEC"] {
            args.append(String(command.count))
            args += command
        }
        let sent = try sendBodyScript.run(
            on: redis, keys: [key(g, ".c"), key(g, ".j"), key(g, ".t"), key(g, ".s"), key(g, ".d")], args: args)
        guard sent.integer == 1 else {
            logger.warning("chord \(g): dispatch claim lost; callback not sent by this worker")
            return (ready, size)
        }
        logger.info("chord \(g) complete (\(ready) parts): sent \(body.task)[\(body.id ?? "?")]")
        return (ready, size)
    }

    /// A chord whose join failed for good (an error reply that is not the server's state,
    /// such as WRONGTYPE): as Celery's `on_chord_part_return` does on an exception, the
    /// body's result is a FAILURE with `ChordError("Callback error: …")`, and the chord's
    /// keys are deleted (its done marker set, so a late part does not recreate them).
    static func fail(
        _ p: ChordPart, cause: String, on redis: RedisConnection, now: Double,
        expires: Int = ResultRecord.expirySeconds
    ) throws(RedisError) {
        let g = p.groupId
        let message = "Callback error: ResponseError(\(PythonRepr.repr(.string(cause))))"
        let record = ResultRecord(
            taskId: p.callback.id ?? TaskMessage.newId(), state: .failure,
            result: TaskFailure(type: "ChordError", message: message, module: "celery.exceptions").resultJSON,
            dateDone: now, groupId: g, expires: expires)
        let commands =
            record.storeCommands() + [
                ["DEL", key(g, ".j"), key(g, ".t"), key(g, ".s"), key(g, ".d")],
                ["SET", key(g, ".c"), "done", "EX", String(doneSeconds)],
            ]
        try atomically(commands, on: redis)
    }

    /// `commands` in one MULTI/EXEC, so a result record and its PUBLISH are seen together (the
    /// frontend's `ResultWatch` relies on every writer of `celery-task-meta-*` doing so).
    private static func atomically(_ commands: [[String]], on redis: RedisConnection) throws(RedisError) {
        let replies = try redis.pipeline([["MULTI"]] + commands + [["EXEC"]])
        for reply in replies + (replies.last?.elements ?? []) {
            if let e = reply.errorMessage { throw .reply(e) }
        }
    }
}
