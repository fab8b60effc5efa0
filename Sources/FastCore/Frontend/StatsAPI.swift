import Foundation
import Logging

/// What `GET /stats` shows, shared by every loop of a frontend (thread-safe): a ring of
/// samples taken every `interval` seconds for `historySeconds` (queue depths, tasks
/// submitted, tasks the workers processed), the workers last inspected, and when
/// `/stats` was last read (workers are inspected only while someone reads it).
///
///     let board = StatsBoard()
///     board.countSubmitted()
///     board.record(StatsBoard.Sample(t: now, queues: ["celery": 3], submitted: board.takeSubmitted(), processed: 0))
public final class StatsBoard: Sendable {
    /// Seconds between samples (the dashboard polls at this pace).
    public static let interval = 2.0
    /// How far back the history goes.
    public static let historySeconds = 600.0
    /// Samples kept: `historySeconds / interval`.
    public static let capacity = Int(historySeconds / interval)
    /// Workers are inspected while `/stats` was read within this many seconds.
    public static let readWindow = 30.0
    /// Queues a sample keeps, deepest first (the history holds 300 samples of them).
    public static let maxSampledQueues = 50
    /// Queues whose depth one tick reads at most (in name order).
    public static let maxQueriedQueues = 1000

    /// The `limit` deepest of `depths` (ties: by name), for a sample.
    ///
    ///     StatsBoard.deepest(["a": 1, "b": 5, "c": 3], limit: 2)  // ["b": 5, "c": 3]
    public static func deepest(_ depths: [String: Int], limit: Int = maxSampledQueues) -> [String: Int] {
        guard depths.count > limit else { return depths }
        let kept = depths.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(limit)
        return Dictionary(uniqueKeysWithValues: kept.map { ($0.key, $0.value) })
    }

    /// One sample of the history.
    public struct Sample: Sendable, Equatable {
        public var t: Double
        public var queues: [String: Int]
        public var submitted: Int
        public var processed: Int
        /// The depth of every queue read, summed (`queues` holds only the deepest ones).
        public var depthTotal: Int
        /// How many queues were read.
        public var queueCount: Int

        /// `depthTotal` and `queueCount` default to `queues`' own.
        public init(
            t: Double, queues: [String: Int], submitted: Int, processed: Int, depthTotal: Int? = nil,
            queueCount: Int? = nil
        ) {
            self.t = t
            self.queues = queues
            self.submitted = submitted
            self.processed = processed
            self.depthTotal = depthTotal ?? queues.values.reduce(0) { $0 &+ $1 }
            self.queueCount = queueCount ?? queues.count
        }
    }

    /// A worker as the last `inspect stats` / `active_queues` replies describe it.
    public struct Worker: Sendable, Equatable {
        public var hostname: String
        public var queues: [String]
        public var concurrency: Int
        /// Tasks it ran since it started (the sum of `stats.total`).
        public var processed: Int
        /// Tasks running now.
        public var active: Int
        /// `celeris 0.2.0`, `celery 5.7.0`, or `celery` when its version is not known yet.
        public var software: String
        /// When its last reply was read (epoch seconds).
        public var lastSeen: Double

        public init(
            hostname: String, queues: [String] = [], concurrency: Int = 0, processed: Int = 0, active: Int = 0,
            software: String = "", lastSeen: Double = 0
        ) {
            self.hostname = hostname
            self.queues = queues
            self.concurrency = concurrency
            self.processed = processed
            self.active = active
            self.software = software
            self.lastSeen = lastSeen
        }
    }

    private struct State {
        var history: [Sample] = []
        var submitted = 0
        var workers: [Worker] = []
        var readAt = -Double.infinity
    }

    private let state = LockedBox(State())

    public init() {}

    /// One task sent (`POST /tasks`, `POST /process`), on any loop.
    public func countSubmitted() { state.modify { $0.submitted &+= 1 } }

    /// Tasks sent since the last call (the sampler's per-sample count).
    public func takeSubmitted() -> Int {
        state.modify {
            let n = $0.submitted
            $0.submitted = 0
            return n
        }
    }

    /// Append a sample, dropping the oldest past `capacity`.
    public func record(_ sample: Sample) {
        state.modify {
            $0.history.append(sample)
            if $0.history.count > Self.capacity { $0.history.removeFirst($0.history.count - Self.capacity) }
        }
    }

    /// Replace the workers list (the inspector's view after a round).
    public func setWorkers(_ workers: [Worker]) { state.modify { $0.workers = workers } }

    /// `/stats` was read at `now`.
    public func markRead(now: Double) { state.modify { $0.readAt = max($0.readAt, now) } }

    /// Whether `/stats` was read within `readWindow` seconds of `now`.
    public func readRecently(now: Double) -> Bool { state.modify { now - $0.readAt <= Self.readWindow } }

    public var history: [Sample] { state.modify { $0.history } }
    public var workers: [Worker] { state.modify { $0.workers } }
}

/// `GET /stats`: queue depths, throughput history and workers online, as JSON.
///
///     connection.respond(status: 200, json: StatsAPI.render(board: board, webSockets: 3, now: clock.now()))
public enum StatsAPI {
    /// The body: `{"time", "interval", "queues", "history": [{"t", "queues", "submitted", "processed"}],
    /// "workers": [{"hostname", "queues", "concurrency", "processed", "active", "software", "last_seen"}],
    /// "websockets"}`; `queues` is the last sample's.
    public static func render(board: StatsBoard, webSockets: Int, now: Double) -> JSON {
        let history = board.history
        func depths(_ q: [String: Int]) -> JSON {
            .object(q.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) })
        }
        let samples: [JSON] = history.map { s in
            [
                "t": .double(s.t), "queues": depths(s.queues), "submitted": .int(Int64(s.submitted)),
                "processed": .int(Int64(s.processed)), "depth_total": .int(Int64(s.depthTotal)),
                "queue_count": .int(Int64(s.queueCount)),
            ]
        }
        let workers: [JSON] = board.workers.sorted { $0.hostname < $1.hostname }.map { w in
            [
                "hostname": .string(w.hostname), "queues": .array(w.queues.map(JSON.string)),
                "concurrency": .int(Int64(w.concurrency)), "processed": .int(Int64(w.processed)),
                "active": .int(Int64(w.active)), "software": .string(w.software), "last_seen": .double(w.lastSeen),
            ]
        }
        return [
            "time": .double(now), "interval": .int(Int64(StatsBoard.interval)),
            "queues": depths(history.last?.queues ?? [:]), "history": .array(samples), "workers": .array(workers),
            "websockets": .int(Int64(webSockets)),
        ]
    }
}

/// Loop 0's sampler behind `/stats`: every `StatsBoard.interval` seconds the depth of every
/// known queue (those requests went to and those workers consume; at most
/// `maxQueriedQueues`) into the history (the `maxSampledQueues` deepest, and the total), and,
/// while `/stats` was read within `StatsBoard.readWindow`, a round of `WorkerInspector`.
///
///     let sampler = StatsSampler(loop: loop, redis: redis, shared: shared, clock: clock, logger: log)
///     sampler.start()
final class StatsSampler {
    private let loop: EventLoop
    private let redis: AsyncRedis
    private let shared: FrontendShared
    private let clock: any WallClock
    private let maxPendingRedis: Int
    let inspector: WorkerInspector
    // Exclusivity: used on its loop's thread only.
    @exclusivity(unchecked) private var timer: LoopTimer?

    init(
        loop: EventLoop, redis: AsyncRedis, shared: FrontendShared, clock: any WallClock, maxPendingRedis: Int,
        logger: Logger
    ) {
        self.loop = loop
        self.redis = redis
        self.shared = shared
        self.clock = clock
        self.maxPendingRedis = maxPendingRedis
        inspector = WorkerInspector(
            loop: loop, redis: redis, board: shared.stats, clock: clock, maxPendingRedis: maxPendingRedis,
            logger: logger)
    }

    func start() {
        timer = loop.timer(after: UInt64(StatsBoard.interval * 1000), repeating: true) { [weak self] in self?.tick() }
    }

    func stop() {
        timer?.cancel()
        timer = nil
        inspector.stop()
    }

    /// One sample, then (when someone reads `/stats`) one inspection round.
    private func tick() {
        let now = clock.now()
        let board = shared.stats
        let inspector = inspector
        let queues = Set(shared.queues).union(inspector.workerQueues).sorted().prefix(StatsBoard.maxQueriedQueues)
        var depths: [String: Int] = [:]
        var left = queues.count
        func finish() {
            board.record(
                StatsBoard.Sample(
                    t: now, queues: StatsBoard.deepest(depths), submitted: board.takeSubmitted(),
                    processed: inspector.takeProcessed(), depthTotal: depths.values.reduce(0) { $0 &+ $1 },
                    queueCount: depths.count))
        }
        if !redis.isConnected || redis.pending >= maxPendingRedis || queues.isEmpty {
            finish()  // depths unknown: an empty sample keeps the time axis whole
        } else {
            for q in queues {
                let sent = redis.send(QueueDepth.command(queue: q)) { reply in
                    if let n = reply?.integer { depths[q] = Int(clamping: n) }
                    left -= 1
                    if left == 0 { finish() }
                }
                if !sent {
                    left -= 1
                    if left == 0 { finish() }
                }
            }
        }
        if board.readRecently(now: now) { inspector.startRound(now: now) }
    }
}
