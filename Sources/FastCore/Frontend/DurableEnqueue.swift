import Foundation
import Logging

/// Opt-in durable enqueue (`--durable-enqueue N`): a task is answered 200 only once
/// `N` replicas hold it, as Redis' `WAIT N T` reports on the connection that pushed it.
/// Without it a 200 means the primary has the message; a failover before the primary
/// streams it to a replica loses the task.
///
/// `WAIT` covers every write the connection made before it, so one `WAIT` covers every push
/// of a batch: pushes are sent as requests arrive, and the first push of a batch arms a
/// zero-delay timer that sends the batch's `WAIT` after them (one replication round trip per
/// batch, not per request). At most one `WAIT` is in flight on the link: Redis blocks the
/// connection while `WAIT` waits, so a second one would only start when the first answered
/// and every later command (pushes, status reads) would queue behind a chain of them. Pushes
/// sent while a `WAIT` is owed join one open batch whose `WAIT` goes out when the owed one
/// answers: every push is answered within two timeouts. Replies come in order: each push's
/// reply arrives before its batch's `WAIT` reply, which answers the batch.
///
///     let durable = DurableEnqueue(loop: loop, redis: redis, settings: .init(replicas: 1, timeoutMs: 1000))
///     let batch = durable.join()                       // before sending the LPUSH
///     redis.send(bytes: push) { reply in batch.await { reached in … } }
final class DurableEnqueue {
    /// How many replicas must hold a task before it is answered, and how long `WAIT` may take.
    struct Settings: Sendable, Equatable {
        /// Replicas `WAIT` asks for (0: off).
        var replicas: Int
        /// Milliseconds `WAIT` blocks at most (Redis' timeout; 0 would wait for ever, so at least 1).
        var timeoutMs: Int
    }

    /// How one batch's `WAIT` ended.
    enum Outcome: Equatable {
        /// `WAIT` answered with this many replicas.
        case reached(Int)
        /// Redis answered `WAIT` with an error (an ACL without WAIT, a read-only replica…).
        case failed(String)
        /// The link dropped (or could not send `WAIT`) before the answer.
        case linkLost

        /// The `reason` label of `celeris_frontend_enqueue_not_replicated_total` for a refusal.
        var reason: String {
            switch self {
            case .reached: return "too_few_replicas"
            case .failed: return "wait_error"
            case .linkLost: return "link_lost"
            }
        }
    }

    /// The pushes of one loop turn, answered together by one `WAIT`.
    final class Batch {
        // Exclusivity: a batch is used on its loop's thread only.
        @exclusivity(unchecked) fileprivate var outcome: Outcome?
        @exclusivity(unchecked) fileprivate var waiters: [(Outcome) -> Void] = []

        /// `body` gets the batch's outcome: at once if `WAIT` already answered, else with its reply.
        func await(_ body: @escaping (Outcome) -> Void) {
            if let outcome { body(outcome) } else { waiters.append(body) }
        }

        fileprivate func finish(_ outcome: Outcome) {
            guard self.outcome == nil else { return }
            self.outcome = outcome
            let waiting = waiters
            waiters = []
            for w in waiting { w(outcome) }
        }
    }

    let settings: Settings
    private let loop: EventLoop
    private let redis: AsyncRedis
    private let logger: Logger
    private let handles = MetricHandles.shared
    // Exclusivity: used on one loop's thread only.
    @exclusivity(unchecked) private var open: Batch?
    @exclusivity(unchecked) private var flushTimer: LoopTimer?
    /// `WAIT`s sent whose replies are owed (0 or 1: one at a time per link).
    @exclusivity(unchecked) private(set) var waitsInFlight = 0

    /// No push is waiting for a `WAIT`: no open batch and no `WAIT` owed (a graceful
    /// shutdown waits for this as well as for the link's pending replies).
    var idle: Bool { open == nil && waitsInFlight == 0 }

    init(loop: EventLoop, redis: AsyncRedis, settings: Settings, logger: Logger) {
        self.loop = loop
        self.redis = redis
        self.settings = Settings(replicas: settings.replicas, timeoutMs: max(1, settings.timeoutMs))
        self.logger = logger
    }

    /// The batch a push sent now belongs to (call it before sending the push): the open
    /// one, or a new one whose `WAIT` goes out once this turn's callbacks ran (or, while a
    /// `WAIT` is owed, when that one answers).
    func join() -> Batch {
        if let open { return open }
        let batch = Batch()
        open = batch
        if waitsInFlight == 0 {
            if let flushTimer {
                flushTimer.start(ms: 0)
            } else {
                flushTimer = loop.timer(after: 0) { [weak self] in self?.flush() }
            }
        }
        return batch
    }

    /// Send the open batch's `WAIT` after its pushes, unless one is owed (its reply flushes).
    private func flush() {
        guard waitsInFlight == 0, let batch = open else { return }
        open = nil
        let started = DispatchTime.now().uptimeNanoseconds
        let metrics = handles
        let sent = redis.send(["WAIT", String(settings.replicas), String(settings.timeoutMs)]) {
            [weak self, logger] reply in
            // Timed whatever the end: a dropped link's WAIT kept its clients waiting as long.
            metrics.timer("celeris_frontend_wait_seconds").recordNanoseconds(
                Int64(clamping: DispatchTime.now().uptimeNanoseconds &- started))
            let outcome: Outcome
            if let reply {
                if let e = reply.errorMessage {
                    logger.error("WAIT failed: \(e)")
                    outcome = .failed(e)
                } else {
                    outcome = .reached(Int(clamping: reply.integer ?? 0))
                }
            } else {
                outcome = .linkLost
            }
            if let self {
                self.waitsInFlight -= 1
                self.flush()  // the pushes sent meanwhile: their WAIT goes out now
            }
            batch.finish(outcome)
        }
        if sent {
            waitsInFlight += 1
        } else {
            batch.finish(.linkLost)
        }
    }

    /// The answer for a task pushed in a batch that ended with `outcome`: nil when enough
    /// replicas have it (answer 200), else the error to answer.
    func refusal(_ outcome: Outcome, taskId: String) -> DurableRefusal? {
        switch outcome {
        case .reached(let n) where n >= settings.replicas:
            return nil
        default:
            handles.counter("celeris_frontend_enqueue_not_replicated_total", [("reason", outcome.reason)])
                .increment()
        }
        switch outcome {
        case .reached(let n):
            return .notReplicated(taskId: taskId, reached: n, wanted: settings.replicas, timeoutMs: settings.timeoutMs)
        case .failed(let e):
            return DurableRefusal(
                error: .brokerError("WAIT failed: \(e); task \(taskId) is in the primary's queue"), taskId: taskId)
        case .linkLost:
            return DurableRefusal(
                error: FrontendError(
                    503, "not_replicated",
                    "the link to Redis dropped before WAIT answered; task \(taskId) may or may not be queued: "
                        + "retry with the same task_id",
                    headers: ["Retry-After": "1"]),
                taskId: taskId)
        }
    }
}

/// A 503 for a task that was pushed but not confirmed on enough replicas: the error and the task's id.
struct DurableRefusal: Equatable {
    var error: FrontendError
    var taskId: String

    /// `{"error": …, "detail": …, "task_id": …}`.
    var body: JSON { ["error": .string(error.code), "detail": .string(error.detail), "task_id": .string(taskId)] }

    /// 503 `not_replicated`: `reached` of `wanted` replicas within `timeoutMs`.
    static func notReplicated(taskId: String, reached: Int, wanted: Int, timeoutMs: Int) -> DurableRefusal {
        DurableRefusal(
            error: FrontendError(
                503, "not_replicated",
                "the task reached \(reached) of \(wanted) replicas within \(timeoutMs) ms; it may be lost on a "
                    + "failover. It is in the primary's queue: retry with the same task_id to be sure it is queued",
                headers: ["Retry-After": "1"]),
            taskId: taskId)
    }
}
