import Foundation
import Logging

/// Finds the workers online for `/stats` as `celery inspect` does: a round PUBLISHes
/// `stats` and `active_queues` on the pidbox fanout with `reply_to` this frontend's reply
/// queue (`<reply-id>.reply.celery.pidbox`, bound in `_kombu.binding.reply.celery.pidbox`
/// as kombu binds it), plus `active` to workers whose stats lack a running count and
/// `report` to those whose version is not known; ~500 ms later one script call takes
/// every reply (LRANGE + DEL), so the loop never blocks. Celeris and Python Celery
/// workers both answer. A malformed reply is skipped.
///
///     let inspector = WorkerInspector(loop: loop, redis: redis, board: board, clock: clock,
///                                     maxPendingRedis: 10_000, logger: log)
///     inspector.startRound(now: clock.now())  // the board's workers follow ~0.5 s later
final class WorkerInspector {
    /// Milliseconds between the broadcast and the read of the replies.
    static let replyWaitMs: UInt64 = 500
    /// A worker not heard from for this many seconds leaves the list.
    static let forgetAfter = 15.0
    /// Two stats replies further apart than this do not count their difference as processed
    /// (the tasks ran while nobody watched: not in this sample's throughput).
    static let deltaWindow = 10.0
    /// Bounds on what replies may make the inspector hold.
    static let maxWorkers = 1000
    static let maxQueuesPerWorker = 200
    static let maxNameBytes = 255
    /// The reply exchange Celery's mailbox uses.
    static let replyExchange = "reply.celery.pidbox"
    /// Milliseconds the reply binding is kept for sweepers (kombu's binding deadline, capture 05).
    static let bindingTTLMs = 3_600_000
    /// Milliseconds replies that came after their round's read are kept (the next round's
    /// bind sets it), so a frontend that stops inspecting leaves nothing behind for long.
    static let replyTTLMs = 10_000

    /// kombu's REFRESH_BINDING: bind, and push the table's sweep deadline out; late replies
    /// left in the reply queue (KEYS[3]) expire.
    static let bindScript = """
        redis.call('SADD', KEYS[1], ARGV[1])
        redis.call('PEXPIRE', KEYS[3], ARGV[4])
        local now = redis.call('TIME')
        local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
        redis.call('ZADD', KEYS[2], 'GT', ms + tonumber(ARGV[3]), ARGV[2])
        return 1
        """
    /// Take every reply queued so far.
    static let takeScript = """
        local r = redis.call('LRANGE', KEYS[1], 0, -1)
        redis.call('DEL', KEYS[1])
        return r
        """
    /// Unbind: remove the binding member and the reply queue.
    static let unbindScript = """
        redis.call('SREM', KEYS[1], ARGV[1])
        redis.call('DEL', KEYS[2])
        return 1
        """

    private struct Known {
        var worker: StatsBoard.Worker
        /// Last `stats.total` sum and when it was read (nil: no stats reply yet).
        var total: Int?
        var totalAt = 0.0
        /// Its stats carry `pool.running` (Celeris); else `active` is asked.
        var hasRunning = false
        var softwareKnown = false
    }

    private let loop: EventLoop
    private let redis: AsyncRedis
    private let board: StatsBoard
    private let clock: any WallClock
    private let maxPendingRedis: Int
    private let logger: Logger
    /// This frontend's reply routing key; replies are LPUSHed to `replyQueue`.
    let replyId = TaskMessage.newId()
    var replyQueue: String { replyId + "." + Self.replyExchange }
    // Exclusivity: used on its loop's thread only.
    @exclusivity(unchecked) private var known: [String: Known] = [:]
    /// The method each ticket of the last rounds asked (replies name only their ticket).
    @exclusivity(unchecked) private var tickets: [String: (method: String, round: Int)] = [:]
    @exclusivity(unchecked) private var round = 0
    @exclusivity(unchecked) private var clockValue = 0
    @exclusivity(unchecked) private var processed = 0
    @exclusivity(unchecked) private var readTimer: LoopTimer?
    /// Malformed replies skipped so far (for tests and logs).
    @exclusivity(unchecked) private(set) var skipped = 0

    init(
        loop: EventLoop, redis: AsyncRedis, board: StatsBoard, clock: any WallClock, maxPendingRedis: Int,
        logger: Logger
    ) {
        self.loop = loop
        self.redis = redis
        self.board = board
        self.clock = clock
        self.maxPendingRedis = maxPendingRedis
        self.logger = logger
    }

    /// Queues the known workers consume.
    var workerQueues: Set<String> { Set(known.values.flatMap(\.worker.queues)) }

    /// Tasks the workers processed since the last call (differences of their stats totals).
    func takeProcessed() -> Int {
        defer { processed = 0 }
        return processed
    }

    /// Stop reading replies and unbind (SREM the binding member, DEL the reply queue) when
    /// a round bound it.
    func stop() {
        readTimer?.cancel()
        readTimer = nil
        guard round > 0, redis.isConnected else { return }
        redis.send(
            [
                "EVAL", Self.unbindScript, "2", QueueKeys.bindingKey(exchange: Self.replyExchange), replyQueue,
                QueueKeys.bindingMember(routingKey: replyId, queue: replyQueue),
            ]
        ) { _ in }
    }

    /// Broadcast this round's commands; the replies are read `replyWaitMs` later.
    func startRound(now: Double) {
        guard redis.isConnected, redis.pending < maxPendingRedis else { return }
        round += 1
        tickets = tickets.filter { round - $0.value.round < 3 }
        let db = redis.endpoint.db
        redis.send(
            [
                "EVAL", Self.bindScript, "3", QueueKeys.bindingKey(exchange: Self.replyExchange),
                "_kombu.binding_deadlines", replyQueue, QueueKeys.bindingMember(routingKey: replyId, queue: replyQueue),
                Self.replyExchange, String(Self.bindingTTLMs), String(Self.replyTTLMs),
            ]
        ) { _ in }  // an old Redis without ZADD GT still bound it (SADD ran first)
        var commands: [(String, [String]?)] = [("stats", nil), ("active_queues", nil)]
        let noRunning = known.values.filter { !$0.hasRunning && $0.total != nil }.map(\.worker.hostname)
        if !noRunning.isEmpty { commands.append(("active", noRunning.sorted())) }
        let noVersion = known.values.filter { !$0.softwareKnown && $0.total != nil }.map(\.worker.hostname)
        if !noVersion.isEmpty { commands.append(("report", noVersion.sorted())) }
        for (method, destination) in commands {
            let ticket = TaskMessage.newId()
            tickets[ticket] = (method, round)
            clockValue += 1
            redis.send(
                Self.broadcast(
                    method: method, destination: destination, ticket: ticket, replyId: replyId, db: db,
                    clock: clockValue, expires: now + 2)
            ) { _ in }
        }
        readTimer = loop.timer(after: Self.replyWaitMs) { [weak self] in self?.readReplies() }
    }

    /// PUBLISH of an inspect command as `celery inspect` sends it: with a ticket and `reply_to`.
    static func broadcast(
        method: String, destination: [String]?, ticket: String, replyId: String, db: Int, clock: Int, expires: Double
    ) -> [String] {
        let body: JSON = [
            "method": .string(method), "arguments": [:],
            "destination": destination.map { JSON.array($0.map(JSON.string)) } ?? JSON.null, "pattern": nil,
            "matcher": nil,
            "ticket": .string(ticket),
            "reply_to": ["exchange": .string(replyExchange), "routing_key": .string(replyId)],
        ]
        let envelope = KombuEnvelope.make(
            body: body, headers: ["clock": .int(Int64(clock)), "expires": .double(expires)], exchange: "celery.pidbox",
            routingKey: "", deliveryMode: 2)
        return ["PUBLISH", KombuEnvelope.fanoutChannel(db: db, exchange: "celery.pidbox"), envelope]
    }

    private func readReplies() {
        readTimer = nil
        guard redis.isConnected else { return }
        redis.send(["EVAL", Self.takeScript, "1", replyQueue]) { [weak self] reply in
            guard let self, let items = reply?.elements else { return }
            let now = clock.now()
            for item in items {
                guard let bytes = item.bytes else {
                    skipped += 1
                    continue
                }
                take(bytes, now: now)
            }
            known = known.filter { now - $0.value.worker.lastSeen <= Self.forgetAfter }
            board.setWorkers(known.values.map(\.worker))
        }
    }

    /// One reply envelope: `{hostname: answer}` for the method its ticket asked.
    func take(_ raw: [UInt8], now: Double) {
        guard let (headers, body) = KombuEnvelope.read(raw), let ticket = headers["ticket"]?.stringValue,
            let method = tickets[ticket]?.method, let answers = body.objectPairs
        else {
            skipped += 1
            return
        }
        for (hostname, answer) in answers {
            guard !hostname.isEmpty, hostname.utf8.count <= Self.maxNameBytes,
                known[hostname] != nil || known.count < Self.maxWorkers, Self.usable(method: method, answer)
            else {
                skipped += 1
                continue
            }
            var k = known[hostname] ?? Known(worker: StatsBoard.Worker(hostname: hostname, software: "celery"))
            k.worker.lastSeen = now
            switch method {
            case "stats": readStats(answer, into: &k, now: now)
            case "active_queues":
                k.worker.queues = (answer.arrayValue ?? []).prefix(Self.maxQueuesPerWorker).compactMap {
                    guard let name = $0["name"]?.stringValue, !name.isEmpty, name.utf8.count <= Self.maxNameBytes
                    else { return nil }
                    return name
                }
            case "active":
                if !k.hasRunning { k.worker.active = answer.arrayValue?.count ?? 0 }
            case "report":
                if let version = Self.celeryVersion(report: answer["ok"]?.stringValue ?? "") {
                    k.worker.software = "celery " + version
                }
                k.softwareKnown = true
            default: break
            }
            known[hostname] = k
        }
    }

    /// Whether an answer has the shape its method gives (anything else is skipped whole).
    private static func usable(method: String, _ answer: JSON) -> Bool {
        switch method {
        case "stats", "report": return answer.objectPairs != nil && answer["error"] == nil
        case "active_queues", "active": return answer.arrayValue != nil
        default: return false
        }
    }

    private func readStats(_ stats: JSON, into k: inout Known, now: Double) {
        var total = 0
        for (_, n) in stats["total"]?.objectPairs ?? [] {
            total = Self.clampedSum(total, n.intValue ?? 0)
        }
        if let previous = k.total, now - k.totalAt <= Self.deltaWindow {
            // A restarted worker counts from 0 again: all it has is new.
            processed = Self.clampedSum(processed, total >= previous ? total - previous : total)
        }
        k.total = total
        k.totalAt = now
        k.worker.processed = total
        if let c = stats["pool"]?["max-concurrency"]?.intValue {
            k.worker.concurrency = Int(clamping: max(0, min(c, 1 << 32)))
        }
        if let running = stats["pool"]?["running"]?.intValue {
            k.hasRunning = true
            k.worker.active = Int(clamping: max(0, min(running, 1 << 32)))
        }
        if let ident = stats["sw_ident"]?.stringValue, let version = stats["sw_ver"]?.stringValue,
            ident.utf8.count + version.utf8.count <= 64
        {
            k.worker.software = ident + " " + version
            k.softwareKnown = true
        }
    }

    /// `a + b` with each count kept to 0...2^40 (replies are untrusted: no overflow trap).
    private static func clampedSum(_ a: Int, _ b: Int64) -> Int {
        let bound: Int64 = 1 << 40
        return Int(min(Int64(a) + max(0, min(b, bound)), bound * 2))
    }

    private static func clampedSum(_ a: Int, _ b: Int) -> Int { clampedSum(a, Int64(b)) }

    /// `5.7.0` from Celery's bug report (`software -> celery:5.7.0 (recovery) kombu:…`).
    static func celeryVersion(report: String) -> String? {
        guard let start = report.range(of: "celery:") else { return nil }
        let version = report[start.upperBound...].prefix {
            $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "+")
        }
        return version.isEmpty ? nil : String(version.prefix(32))
    }
}
