import Metrics

/// The worker's numbers through swift-metrics (Prometheus when the executable
/// bootstraps it): tasks by name and outcome, runtimes, pool and queue gauges.
///
///     let metrics = WorkerMetrics(enabled: true)
///     metrics.received("add")
public struct WorkerMetrics: Sendable {
    /// Off (no `--metrics-port`): the per-task calls return at once, with no handle lookup.
    public let enabled: Bool

    public init(enabled: Bool = true) { self.enabled = enabled }

    private var handles: MetricHandles { .shared }

    public func received(_ task: String) {
        guard enabled else { return }
        handles.counter("celeris_tasks_received_total", [("task", task)]).increment()
    }

    /// A task ended: outcome is `succeeded`, `failed`, `retried` or `revoked`.
    public func finished(_ task: String, outcome: String, seconds: Double?) {
        guard enabled else { return }
        handles.counter("celeris_tasks_\(outcome)_total", [("task", task)]).increment()
        if let seconds {
            handles.timer("celeris_task_runtime_seconds", [("task", task)]).recordNanoseconds(Int64(seconds * 1e9))
        }
    }

    /// Redis refused or lost a write of results and acks (`reason`: `oom`, `readonly`,
    /// `loading`, `connection`…): it is sent again, its deliveries kept.
    public func writeFailed(reason: String) {
        guard enabled else { return }
        handles.counter("celeris_worker_write_failures_total", [("reason", reason)]).increment()
    }

    /// A chord join failed (its body's enqueue or its count); it is tried again.
    public func chordJoinFailed() {
        guard enabled else { return }
        handles.counter("celeris_worker_chord_join_failures_total").increment()
    }

    /// Threads given up on past a hard time limit that have not returned yet (recorded at
    /// each abandonment and with the once-a-second samples, so it falls as they return).
    public func abandonedThreads(_ count: Int) {
        guard enabled else { return }
        Gauge(label: "celeris_worker_abandoned_threads").record(count)
    }

    /// Pool and queue gauges, sampled by the consumer about once a second.
    public func sample(poolSize: Int, running: Int, prefetched: Int, scheduled: Int, queueDepths: [String: Int]) {
        Gauge(label: "celeris_pool_size").record(poolSize)
        Gauge(label: "celeris_tasks_in_flight").record(running)
        Gauge(label: "celeris_tasks_prefetched").record(prefetched)
        Gauge(label: "celeris_tasks_scheduled").record(scheduled)
        for (q, n) in queueDepths { Gauge(label: "celeris_queue_depth", dimensions: [("queue", q)]).record(n) }
    }
}
