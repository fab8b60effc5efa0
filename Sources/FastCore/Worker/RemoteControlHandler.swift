import Foundation

/// Celery's remote-control commands (`celery inspect` / `celery control`), answered
/// on the consumer thread, which owns the worker's state, and the worker's events.
extension Consumer {
    /// Hand a remote-control command to the loop (thread-safe).
    public func control(_ request: ControlRequest) {
        controlInbox.modify { $0.append(request) }
        outbox.wake()
    }

    func answerControlRequests() {
        let requests = controlInbox.exchange([])
        guard !requests.isEmpty else { return }
        for request in requests where request.isFor(configuration.hostname) {
            let reply = answer(request)
            if let reply, let to = request.replyTo { sendReply(reply, to: to, ticket: request.ticket) }
        }
    }

    /// LPUSH `{node: reply}` to the queue bound to the reply routing key.
    private func sendReply(_ reply: JSON, to: (exchange: String, routingKey: String), ticket: String?) {
        guard let r = settledConnection(),
            let members = try? r.command("SMEMBERS", QueueKeys.bindingKey(exchange: to.exchange)).elements
        else { return }
        let prefix = to.routingKey + QueueKeys.separator
        guard let member = members.compactMap(\.text).first(where: { $0.hasPrefix(prefix) }),
            let queue = member.components(separatedBy: QueueKeys.separator).last
        else { return }
        events.clock += 1
        let envelope = KombuEnvelope.make(
            body: .object([(configuration.hostname, reply)]),
            headers: ["ticket": ticket.map(JSON.string) ?? nil, "clock": .int(Int64(events.clock))],
            exchange: to.exchange,
            routingKey: to.routingKey)
        pipeline.own.append(["LPUSH", queue, envelope])
    }

    /// The answer to one command; nil sends no reply (as Celery does for shutdown and mingle).
    ///
    /// Every argument is checked before anything changes: a bad one gets Celery's
    /// `{"error": …}` reply and leaves the worker as it was.
    func answer(_ request: ControlRequest) -> JSON? {
        let args = request.arguments
        guard args.isNull || args.objectPairs != nil else { return ["error": "arguments must be an object"] }
        switch request.method {
        case "ping": return ["ok": "pong"]
        case "stats": return stats()
        case "registered": return .array(registry.names.map(JSON.string))
        case "active_queues": return .array(queues.map(queueInfo))
        case "active":
            return .array(held.values.filter { $0.started != nil }.map { requestInfo($0) })
        case "reserved":
            return .array(
                held.values.filter { $0.started == nil && $0.due == nil }.map { requestInfo($0) })
        case "scheduled":
            return .array(
                held.values.compactMap { h -> JSON? in
                    guard let due = h.due else { return nil }
                    return [
                        "eta": .string(CeleryTime.isoformat(due)), "priority": .int(Int64(h.message.priority)),
                        "request": requestInfo(h),
                    ]
                })
        case "revoked": return .array(revoked.ids.map(JSON.string))
        case "revoke": return revoke(args)
        case "query_task":
            let ids = Set(args["ids"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            return .object(
                held.values.filter { ids.contains($0.message.id) }.map {
                    ($0.message.id, [$0.started == nil ? "reserved" : "active", requestInfo($0)])
                })
        case "rate_limit":
            guard let name = args["task_name"]?.stringValue, registry.task(named: name) != nil else {
                return ["error": "unknown task"]
            }
            let text = args["rate_limit"]?.stringValue ?? args["rate_limit"]?.serialized() ?? ""
            guard text == "0" || text == "null" || RateLimit(text) != nil else {
                return [
                    "error": .string(
                        "invalid rate limit string: a number ≥ 0 per s, m or h, at least 1/day when not 0, got \(PythonRepr.truncated(text, limit: RateLimit.maxTextLength))"
                    )
                ]
            }
            limiter.set(name, RateLimit(text))
            logger.info("rate limit for \(name) set to \(text)")
            return ["ok": "new rate limit set successfully"]
        case "time_limit":
            guard let name = args["task_name"]?.stringValue else { return ["error": "task_name required"] }
            guard registry.task(named: name) != nil else { return ["error": "unknown task"] }
            // Each limit null (none) or seconds in 0...maxTimeLimit (0 is none, as in Celery).
            let range = 0...ControlRequest.maxTimeLimit
            for key in ["soft", "hard"] where !request.lacks(key) && request.seconds(key, in: range) == nil {
                return [
                    "error": .string(
                        "\(key) must be a number of seconds in 0...\(Int(ControlRequest.maxTimeLimit)) or null")
                ]
            }
            let soft = request.seconds("soft", in: range).flatMap { $0 > 0 ? $0 : nil }
            let hard = request.seconds("hard", in: range).flatMap { $0 > 0 ? $0 : nil }
            _ = registry.update(name) { o in
                o.softTimeLimit = soft
                o.timeLimit = hard
            }
            logger.info("time limits for \(name): soft \(args["soft"] ?? nil), hard \(args["hard"] ?? nil)")
            return ["ok": "time limits set successfully"]
        case "enable_events":
            runnerSettings.events.set(true)
            return ["ok": "task events enabled"]
        case "disable_events":
            runnerSettings.events.set(false)
            return ["ok": "task events disabled"]
        case "pool_grow", "pool_shrink":
            let limit = ControlRequest.maxConcurrency
            let n = request.lacks("n") ? 1 : request.integer("n", in: 0...limit)
            guard let n else { return ["error": .string("n must be an integer in 0...\(limit)")] }
            let grow = request.method == "pool_grow"
            let size = pool.size + (grow ? n : -n)  // both within 0...limit: no overflow
            guard (1...limit).contains(size) else {
                return [
                    "error": .string(
                        "pool of \(pool.size) cannot \(grow ? "grow" : "shrink") by \(n): 1...\(limit) slots")
                ]
            }
            pool.resize(to: size)
            return ["ok": .string("pool will \(grow ? "grow" : "shrink")")]
        case "autoscale":
            let limit = ControlRequest.maxConcurrency
            guard let max = request.integer("max", in: 1...limit), let min = request.integer("min", in: 1...limit),
                min <= max
            else { return ["error": .string("max and min must be integers with 1 <= min <= max <= \(limit)")] }
            autoscaling.scaler = Autoscaler(max: max, min: min, keepalive: configuration.autoscaleKeepalive)
            return ["ok": .string("autoscale now max=\(max) min=\(min)")]
        case "add_consumer":
            guard let q = args["queue"]?.stringValue, !q.isEmpty else { return ["error": "queue required"] }
            guard q.utf8.count <= ControlRequest.maxQueueName,
                !q.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
            else {
                return [
                    "error": .string("queue names are 1...\(ControlRequest.maxQueueName) bytes, no control characters")
                ]
            }
            if !queues.contains(q) { queues.append(q) }
            setQueues(queues)
            return ["ok": .string("add consumer \(q)")]
        case "cancel_consumer":
            guard let q = args["queue"]?.stringValue else { return ["error": "queue required"] }
            setQueues(queues.filter { $0 != q })
            return ["ok": .string("no longer consuming from \(q)")]
        case "conf":
            return [
                "broker_url": .string(configuration.endpoint.description),
                "result_backend": .string(configuration.endpoint.description),
                "task_default_queue": "celery", "worker_concurrency": .int(Int64(pool.size)),
                "worker_prefetch_multiplier": .int(Int64(fetcher.budget.perSlot)),
                "worker_send_task_events": .bool(runnerSettings.events.get()),
                "broker_transport_options": ["visibility_timeout": .double(configuration.visibilityTimeout)],
                "task_routes": .object(configuration.routes.rules.map { ($0.pattern, ["queue": .string($0.queue)]) }),
            ]
        case "report":
            return [
                "ok": .string(
                    "celeris \(CelerisVersion.current): \(held.count) held, \(pool.running) running, queues \(queues.joined(separator: ","))"
                )
            ]
        case "shutdown":
            logger.warning("Got shutdown from remote")
            stop()
            return nil
        case "hello", "heartbeat", "clock":
            return nil
        default:
            return ["error": .string("No such command: \(request.method)")]
        }
    }

    /// Celery's `revoke`: remember the ids; with `terminate`, abandon a running task.
    private func revoke(_ args: JSON) -> JSON {
        let ids =
            args["task_id"]?.arrayValue?.compactMap(\.stringValue) ?? [args["task_id"]?.stringValue].compactMap { $0 }
        let terminate = args["terminate"] == true
        revoked.add(ids)
        for (tag, h) in held where ids.contains(h.message.id) {
            if h.started == nil, let runner = pool.cancel(tag: tag) ?? (h.due != nil ? h : nil) {
                schedule.remove(tag)
                held[tag] = nil
                finishRevoked(runner, terminated: false)
            } else if h.revokeBeforeStart() {
                // Taken to run (by a pool thread, or this turn's start) but not started: it
                // will not run its body, with or without terminate.
                held[tag] = nil
                finishRevoked(h, terminated: false)
            } else if terminate {
                pool.abandon(h)
                held[tag] = nil
                finishRevoked(h, terminated: true)
            }
        }
        logger.info(
            "tasks \(PythonRepr.truncated(ids.joined(separator: ", "))) flagged as revoked\(terminate ? " (terminate)" : "")"
        )
        return ["ok": .string("tasks \(ids.joined(separator: ", ")) flagged as revoked")]
    }

    /// REVOKED result + ack + task-revoked event for a task that will not run (or was terminated).
    func finishRevoked(_ runner: TaskContext, terminated: Bool) {
        let m = runner.message
        finishWithoutRunning(
            m, .revoked, TaskFailure(type: "TaskRevokedError", message: "revoked", module: "celery.exceptions"))
        if runnerSettings.events.get() {
            events.pending.append(
                runner.event(
                    "task-revoked",
                    ["terminated": .bool(terminated), "signum": terminated ? 15 : nil, "expired": false]))
        }
    }

    private func setQueues(_ new: [String]) {
        queues = new.isEmpty ? queues : new
        settle()  // take in a claim in flight first
        // Record what claims by move took before the reconnect: it moves this worker's
        // claiming lists back to their queues, and what is held here would run twice.
        if pipeline.claim.hasUnrecorded { writeOwn() }
        dropConnection()  // reconnect declares bindings for the new set
        fetcher.reset(queues: queues)
    }

    /// `active` / `reserved` entries as Celery's inspect shows them.
    private func requestInfo(_ runner: TaskContext) -> JSON {
        let m = runner.message
        return [
            "id": .string(m.id), "name": .string(m.task), "args": .array(m.args), "kwargs": .object(m.kwargs),
            "type": .string(m.task), "hostname": .string(configuration.hostname),
            "time_start": runner.started.map(JSON.double) ?? nil, "acknowledged": false,
            "delivery_info": [
                "exchange": .string(m.exchange), "routing_key": .string(m.routingKey),
                "priority": .int(Int64(m.priority)),
                "redelivered": m.headers["redelivered"] ?? false,
            ],
            "worker_pid": .int(Int64(ProcessInfo.processInfo.processIdentifier)),
        ]
    }

    /// A queue as `inspect active_queues` describes it (kombu's Queue fields).
    private func queueInfo(_ name: String) -> JSON {
        [
            "name": .string(name),
            "exchange": [
                "name": .string(name), "type": "direct", "arguments": nil, "durable": true, "passive": false,
                "auto_delete": false, "delivery_mode": nil, "no_declare": false,
            ],
            "routing_key": .string(name), "queue_arguments": nil, "binding_arguments": nil, "consumer_arguments": nil,
            "durable": true, "exclusive": false, "auto_delete": false, "no_ack": false, "alias": nil, "bindings": [],
            "no_declare": nil, "expires": nil, "message_ttl": nil, "max_length": nil, "max_length_bytes": nil,
            "max_priority": nil,
        ]
    }

    /// `inspect stats`: the fields Celery and Flower read.
    func stats() -> JSON {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let size = pool.size
        var poolInfo: [(key: String, value: JSON)] = [
            ("max-concurrency", .int(Int64(size))),
            ("processes", .array((0..<size).map { _ in .int(Int64(ProcessInfo.processInfo.processIdentifier)) })),
            ("max-tasks-per-child", "N/A"), ("put-guarded-by-semaphore", false), ("timeouts", [0, 0]),
            ("implementation", "celeris:threads"), ("running", .int(Int64(pool.running))),
            ("queued", .int(Int64(pool.queued))),
        ]
        if let a = autoscaling.scaler {
            poolInfo.append(
                ("autoscaler", ["max": .int(Int64(a.max)), "min": .int(Int64(a.min)), "qty": .int(Int64(size))]))
        }
        return [
            "total": .object(processed.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) }),
            "pid": .int(Int64(ProcessInfo.processInfo.processIdentifier)), "clock": .string(String(events.clock)),
            "uptime": .int(Int64(clock.now() - started)), "pool": .object(poolInfo),
            "broker": [
                "hostname": .string(configuration.endpoint.host), "userid": nil,
                "virtual_host": .string(String(configuration.endpoint.db)),
                "port": .int(Int64(configuration.endpoint.port)),
                "insist": false, "ssl": false, "transport": "redis", "connect_timeout": 4, "transport_options": [:],
                "login_method": nil, "uri_prefix": nil, "heartbeat": 120.0, "failover_strategy": "round-robin",
                "alternates": [],
            ],
            "prefetch_count": .int(Int64(capacity)),
            "rusage": [
                "utime": .double(Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6),
                "stime": .double(Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6),
                "maxrss": .int(Int64(usage.ru_maxrss)),
            ],
            "held": ["reserved": .int(Int64(held.count - schedule.count)), "scheduled": .int(Int64(schedule.count))],
            "sw_ident": "celeris", "sw_ver": .string(CelerisVersion.current), "sw_sys": "Linux",
        ]
    }

    // MARK: - events

    /// Publish pending task events as one `task.multi`, worker-online once, heartbeats every 2 s.
    func sendEvents(_ now: Double) {
        guard runnerSettings.events.get() else {
            events.pending.removeAll()
            return
        }
        pipeline.own += events.commands(
            now: now, hostname: configuration.hostname, db: configuration.endpoint.db, workerEvent: workerEvent)
    }

    func workerEvent(_ type: String) -> JSON {
        [
            "freq": .double(WorkerEvents.heartbeatSeconds), "active": .int(Int64(pool.running)),
            "processed": .int(Int64(processed.values.reduce(0, +))), "loadavg": WorkerEvents.loadAverage(),
            "sw_ident": "celeris", "sw_ver": .string(CelerisVersion.current), "sw_sys": "Linux",
            "timestamp": .double(clock.now()), "type": .string(type),
        ]
    }
}
