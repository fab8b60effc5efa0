import Foundation
import Logging

/// How a worker consumes: where, which queues, how many at once.
public struct WorkerConfiguration: Sendable {
    public var endpoint: RedisEndpoint
    public var queues: [String]
    public var concurrency: Int
    /// Messages claimed per executor slot (Celery's worker_prefetch_multiplier).
    public var prefetchMultiplier: Int
    public var hostname: String
    /// Seconds `create_task` sleeps per step.
    public var stepSeconds: Double
    /// Where undecodable messages go, with the reason.
    public var deadLetterKey: String
    /// Longest pause between claims while the queues are empty.
    public var maxIdleSeconds: Double

    public init(
        endpoint: RedisEndpoint, queues: [String] = ["celery"], concurrency: Int = 1, prefetchMultiplier: Int = 4,
        hostname: String, stepSeconds: Double = 1, deadLetterKey: String = "celeris.dead_letter",
        maxIdleSeconds: Double = 0.02
    ) {
        self.endpoint = endpoint
        self.queues = queues
        self.concurrency = concurrency
        self.prefetchMultiplier = prefetchMultiplier
        self.hostname = hostname
        self.stepSeconds = stepSeconds
        self.deadLetterKey = deadLetterKey
        self.maxIdleSeconds = maxIdleSeconds
    }
}

/// The worker's broker loop: claims deliveries atomically, hands them to the
/// executor pool, and writes results, progress and acks in pipelined batches.
/// Runs on the calling thread until `stop()`; survives Redis restarts.
///
///     let consumer = Consumer(configuration: cfg, registry: registry, logger: log)
///     consumer.run()
public final class Consumer: @unchecked Sendable {
    public let configuration: WorkerConfiguration
    private let registry: TaskRegistry
    private let logger: Logger
    private let outbox = Outbox()
    private let pool: ExecutorPool
    private let claim = DeliveryClaim()
    private let stopping = LockedBox(false)
    private var redis: RedisConnection?
    private var queueOrder: [String]
    private var inFlight = 0
    private var ownWrites: [[String]] = []

    public init(configuration: WorkerConfiguration, registry: TaskRegistry, logger: Logger) {
        self.configuration = configuration
        self.registry = registry
        self.logger = logger
        self.queueOrder = configuration.queues
        self.pool = ExecutorPool(size: configuration.concurrency, name: "celeris-task")
    }

    /// Deliveries claimed and not yet acknowledged.
    public var capacity: Int { max(1, configuration.concurrency * max(1, configuration.prefetchMultiplier)) }

    /// Ask the loop to stop claiming, finish what it holds, and return (thread-safe).
    public func stop() {
        stopping.set(true)
        outbox.wake()
    }

    /// Consume until `stop()`.
    public func run() {
        var idle = 0.001
        var claimedLast = 0
        while true {
            let stop = stopping.get()
            if stop && inFlight == 0 && ownWrites.isEmpty {
                let rest = outbox.take(waitingUpTo: 0)
                if rest.isEmpty { break }
                write(rest)
                continue
            }
            let wait = claimedLast > 0 ? 0 : (inFlight >= capacity || stop ? 0.1 : idle)
            let entries = outbox.take(waitingUpTo: wait)
            if !entries.isEmpty || !ownWrites.isEmpty { write(entries) }
            claimedLast = 0
            if !stop && inFlight < capacity && ensureConnected() {
                claimedLast = claimAndDispatch(max: capacity - inFlight)
            }
            idle = claimedLast > 0 ? 0.001 : min(idle * 2, configuration.maxIdleSeconds)
        }
        pool.shutdown()
        logger.info("consumer stopped")
    }

    // MARK: - connection

    /// Connect (once per call) if needed, declaring our queues' bindings.
    private func ensureConnected() -> Bool {
        if redis != nil { return true }
        do {
            let r = try RedisConnection(endpoint: configuration.endpoint)
            var cmds: [[String]] = []
            for q in configuration.queues {
                let member = QueueKeys.bindingMember(routingKey: q, queue: q)
                cmds.append(["SADD", QueueKeys.bindingKey(exchange: q), member])
            }
            _ = try r.pipeline(cmds)
            redis = r
            logger.info(
                "connected to \(configuration.endpoint), consuming \(configuration.queues.joined(separator: ","))")
            return true
        } catch {
            logger.warning("Redis at \(configuration.endpoint) unreachable (\(error)); retrying")
            Thread.sleep(forTimeInterval: 0.5)
            return false
        }
    }

    private func dropConnection(_ error: RedisError) {
        logger.warning("lost Redis: \(error); reconnecting")
        redis = nil
    }

    // MARK: - writes

    /// Pipeline our own commands plus the outbox entries; on failure keep them for later.
    private func write(_ entries: [Outbox.Entry]) {
        guard ensureConnected(), let r = redis else {
            outbox.requeue(entries)
            return
        }
        var cmds = ownWrites
        for e in entries { cmds += e.commands }
        do {
            let replies = try r.pipeline(cmds)
            for (cmd, reply) in zip(cmds, replies) {
                if let e = reply.errorMessage { logger.error("\(cmd.first ?? "?") failed: \(e)") }
            }
            ownWrites.removeAll()
            inFlight -= entries.filter(\.completes).count
        } catch {
            dropConnection(error)
            outbox.requeue(entries)
        }
    }

    // MARK: - claiming

    private func claimAndDispatch(max: Int) -> Int {
        guard let r = redis else { return 0 }
        let deliveries: [DeliveryClaim.Delivery]
        do {
            deliveries = try claim.claim(on: r, queues: queueOrder, max: max)
        } catch {
            if case .reply(let m) = error {
                logger.error("claim failed: \(m)")
                Thread.sleep(forTimeInterval: 0.5)
            } else {
                dropConnection(error)
            }
            return 0
        }
        for d in deliveries { dispatch(d) }
        if let last = deliveries.last, queueOrder.count > 1 {
            // kombu rotates the queue that just delivered to the back.
            let q = last.queue
            queueOrder.removeAll { $0 == q }
            queueOrder.append(q)
        }
        return deliveries.count
    }

    private func dispatch(_ d: DeliveryClaim.Delivery) {
        var message: TaskMessage
        do {
            message = try TaskMessage.decode(d.raw, queue: d.queue)
        } catch {
            deadLetter(d, reason: error.reason)
            return
        }
        message.deliveryTag = d.tag
        guard let function = registry.function(named: message.task) else {
            logger.error("Received unregistered task of type '\(message.task)' (id \(message.id)); stored as FAILURE")
            let failure = TaskFailure(
                type: "NotRegistered", arguments: [.string(message.task)], module: "celery.exceptions")
            let record = ResultRecord(
                taskId: message.id, state: .failure, result: failure.resultJSON, traceback: nil,
                dateDone: CeleryTime.now(),
                parentId: message.parentId)
            ownWrites += [["MULTI"]] + record.storeCommands() + DeliveryClaim.ackCommands(tag: d.tag) + [["EXEC"]]
            return
        }
        inFlight += 1
        let runner = TaskRunner(
            message: message, function: function, outbox: outbox, stepSeconds: configuration.stepSeconds, logger: logger
        )
        pool.submit { runner.run() }
    }

    private func deadLetter(_ d: DeliveryClaim.Delivery, reason: String) {
        logger.error("poison message from \(d.queue) (tag \(d.tag)) moved to \(configuration.deadLetterKey): \(reason)")
        let entry: JSON = [
            "reason": .string(reason), "queue": .string(d.queue), "delivery_tag": .string(d.tag),
            "worker": .string(configuration.hostname), "date": .string(CeleryTime.isoformat(CeleryTime.now())),
            "message": .string(String(decoding: d.raw, as: UTF8.self)),
        ]
        ownWrites +=
            [["MULTI"], ["LPUSH", configuration.deadLetterKey, entry.serialized()]]
            + DeliveryClaim.ackCommands(tag: d.tag) + [["EXEC"]]
    }
}

/// Runs one task on an executor thread and posts its result and ack.
struct TaskRunner: Sendable {
    let message: TaskMessage
    let function: TaskFunction
    let outbox: Outbox
    let stepSeconds: Double
    let logger: Logger

    func run() {
        let ctx = TaskContext(message: message, outbox: outbox, stepSeconds: stepSeconds)
        let started = CeleryTime.now()
        var record: ResultRecord
        var statusFields = ctx.completionFields
        do {
            let result = try function(ctx)
            record = ResultRecord(
                taskId: message.id, state: .success, result: result, dateDone: CeleryTime.now(), groupId: message.group,
                parentId: message.parentId)
            statusFields = ctx.completionFields
            let runtime = String(format: "%.6f", CeleryTime.now() - started)
            logger.info("Task \(message.task)[\(message.id)] succeeded in \(runtime)s: \(result.serialized())")
        } catch {
            let failure = (error as? TaskFailure) ?? TaskFailure(type: "RuntimeError", message: "\(error)")
            record = ResultRecord(
                taskId: message.id, state: .failure, result: failure.resultJSON,
                traceback:
                    "Traceback (most recent call last):\n  Celeris task \(message.task)\n\(failure.type): \(failure.arguments.first.map { $0.stringValue ?? $0.serialized() } ?? "")\n",
                dateDone: CeleryTime.now(), groupId: message.group, parentId: message.parentId)
            statusFields = (ctx.completionFields ?? [:]).setting("error", .string(failure.description))
            logger.error("Task \(message.task)[\(message.id)] raised unexpected: \(failure)")
        }
        var cmds: [[String]] = [["MULTI"]]
        if !message.ignoreResult { cmds += record.storeCommands() }
        if let fields = statusFields {
            cmds.append(["PUBLISH", ctx.statusChannel, ctx.statusUpdate(fields, state: record.state).serialized()])
        }
        cmds += DeliveryClaim.ackCommands(tag: message.deliveryTag)
        cmds.append(["EXEC"])
        outbox.post(.init(commands: cmds, completes: true))
    }
}
