import Logging

/// Once a second: samples the pool and queue-depth gauges (`--metrics-port`) and,
/// with `--autoscale`, sizes the pool to running + waiting work, the Redis backlog
/// included.
///
///     var driver = AutoscaleDriver(scaler: Autoscaler(max: 8, min: 2), sampling: true)
///     try driver.tick(now: clock.now(), on: redis, queues: ["celery"], pool: pool, scheduled: 0, metrics: m, logger: log)
struct AutoscaleDriver {
    var scaler: Autoscaler?
    let sampling: Bool
    private(set) var nextTick = 0.0

    init(scaler: Autoscaler?, sampling: Bool) {
        self.scaler = scaler
        self.sampling = sampling
    }

    /// Whether ticks run at all (the loop's wait counts `nextTick` only then).
    var isActive: Bool { scaler != nil || sampling }

    /// Whether a tick is due.
    func isDue(_ now: Double) -> Bool { isActive && now >= nextTick }

    mutating func tick(
        now: Double, on r: RedisConnection, queues: [String], pool: ExecutorPool, scheduled: Int,
        metrics: WorkerMetrics, logger: Logger
    ) {
        guard isDue(now) else { return }
        nextTick = now + 1
        let replies = (try? r.pipeline(QueueDepth.commands(queues: queues))) ?? []
        let perQueue = QueueDepth.depths(queues: queues, replies: replies.map(\.integer))
        let backlog = perQueue.values.reduce(0, +)
        if sampling {
            metrics.sample(
                poolSize: pool.size, running: pool.running, prefetched: pool.queued, scheduled: scheduled,
                queueDepths: perQueue)
            metrics.abandonedThreads(pool.abandonedThreads)
        }
        guard var s = scaler else { return }
        let size = pool.size
        let demand = pool.running + pool.queued + backlog
        if let n = s.decide(now: now, size: size, demand: demand), n != size {
            pool.resize(to: n)
            logger.info(
                "autoscale: \(size) -> \(n) slots (running \(pool.running), waiting \(pool.queued), backlog \(backlog))"
            )
        }
        scaler = s
    }
}
