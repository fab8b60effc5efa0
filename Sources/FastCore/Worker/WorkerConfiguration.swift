import Foundation
import Logging

/// How a worker consumes: where, which queues, how many at once.
public struct WorkerConfiguration: Sendable {
    public var endpoint: RedisEndpoint
    public var queues: [String]
    public var concurrency: Int
    /// Messages claimed per executor slot (Celery's worker_prefetch_multiplier); nil (the
    /// default): sized from the tasks' durations (`ClaimBudget`), deep for short tasks,
    /// about one per slot for long ones.
    public var prefetchMultiplier: Int?
    public var hostname: String
    /// Seconds `create_task` sleeps per step.
    public var stepSeconds: Double
    /// Where undecodable messages go, with the reason.
    public var deadLetterKey: String
    /// The consumer connection's socket I/O: io_uring, plain socket, or io_uring where allowed.
    public var redisIO: IOMode = .socket
    /// Claim by moving each batch into a claiming list (one transaction, no script), the
    /// records written by the worker (`ClaimByMove`), instead of the claim script (`DeliveryClaim`).
    public var claimByMove = false
    /// Longest pause between claims while the queues are empty.
    public var maxIdleSeconds: Double
    /// A delivery whose lease is older than this is returned to its queue by any live worker (kombu's default: 1 h).
    public var visibilityTimeout: Double
    /// ETA/rate-limited deliveries held beyond the prefetch window before they count against it.
    public var maxScheduledBeyondPrefetch: Int
    /// Send Celery events (`-E`): worker heartbeats and task events, for Flower.
    public var events: Bool
    /// `--autoscale=MAX,MIN`; nil keeps `concurrency` slots.
    public var autoscale: (max: Int, min: Int)?
    /// Seconds of lower demand before autoscale shrinks the pool.
    public var autoscaleKeepalive: Double
    /// Sample pool and queue-depth gauges every second (`--metrics-port`).
    public var metrics: Bool
    /// Where tasks sent by tasks go.
    public var routes: TaskRoutes
    public var clock: any WallClock
    /// Threads stuck in tasks past their hard time limit (abandoned, still running) at
    /// which the worker restarts warm (`--max-abandoned-threads`): it stops claiming,
    /// gives back what has not started, finishes what runs and exits with
    /// `Consumer.abandonedThreadsExitStatus` for its supervisor to start it again. 0: never.
    public var maxAbandonedThreads = 4
    /// Times a delivery may go back to its queue after its worker stopped without
    /// acknowledging it (crashed, killed, lost its connection) before it is dead-lettered
    /// with the reason (`--max-redeliveries`, `RedeliveryLimit`). Celery has no limit; negative: none.
    public var maxRedeliveries = RedeliveryLimit.defaultMax
    /// The largest message decoded, in bytes (`--max-message-bytes`): a larger one is
    /// dead-lettered with the reason, unread. Default 64 MiB.
    public var maxMessageBytes = TaskMessage.defaultMaxBytes
    /// The bytes one claim takes at most (`--max-claim-bytes`; it always takes one message). Default 64 MiB.
    public var maxClaimBytes = DeliveryClaim.defaultClaimBytes
    /// Seconds result records live (`--result-expires`, Celery's `result_expires`; a task's
    /// `TaskOptions.resultExpires` wins). Default 86400; 0: they never expire.
    public var resultExpires = ResultRecord.expirySeconds

    public init(
        endpoint: RedisEndpoint, queues: [String] = ["celery"], concurrency: Int = 1, prefetchMultiplier: Int? = nil,
        hostname: String, stepSeconds: Double = 1, deadLetterKey: String = "celeris.dead_letter",
        maxIdleSeconds: Double = 0.02, visibilityTimeout: Double = 3600, maxScheduledBeyondPrefetch: Int = 1000,
        events: Bool = false, autoscale: (max: Int, min: Int)? = nil, autoscaleKeepalive: Double = 30,
        metrics: Bool = false, routes: TaskRoutes = TaskRoutes(), clock: any WallClock = SystemClock()
    ) {
        self.endpoint = endpoint
        self.queues = queues
        self.concurrency = concurrency
        self.prefetchMultiplier = prefetchMultiplier
        self.hostname = hostname
        self.stepSeconds = stepSeconds
        self.deadLetterKey = deadLetterKey
        self.maxIdleSeconds = maxIdleSeconds
        self.visibilityTimeout = visibilityTimeout
        self.maxScheduledBeyondPrefetch = maxScheduledBeyondPrefetch
        self.events = events
        self.autoscale = autoscale
        self.autoscaleKeepalive = autoscaleKeepalive
        self.metrics = metrics
        self.routes = routes
        self.clock = clock
    }

    /// How often held deliveries get their lease renewed: a quarter of the visibility
    /// timeout, and at least every second, so a peer sharing the broker with a shorter
    /// visibility timeout (2 s or more) never takes a live worker's deliveries.
    var leaseInterval: Double { min(1, max(0.2, visibilityTimeout / 4)) }
    /// How often a recovery pass looks for stale leases.
    var recoveryInterval: Double { min(max(0.5, visibilityTimeout / 2), 10) }
    /// The redelivery limit recovery enforces (`maxRedeliveries`, into `deadLetterKey`).
    var redeliveryLimit: RedeliveryLimit {
        RedeliveryLimit(max: maxRedeliveries, deadLetterKey: deadLetterKey, worker: hostname)
    }
}
