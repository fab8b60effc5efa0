import Metrics

/// The scheduler's numbers through swift-metrics (Prometheus when `celeris-beat` runs with
/// `--metrics-port`): sends, skips, fenced sends, lateness, leadership, entries, reloads and
/// errors. Off (`enabled: false`) every call returns at once.
///
///     let metrics = BeatMetrics(enabled: true)
///     metrics.sent(latenessSeconds: 0.004)
public struct BeatMetrics: Sendable {
    /// Whether anything is recorded.
    public let enabled: Bool

    /// Metrics recorded into the bootstrapped swift-metrics backend when `enabled`.
    ///
    ///     BeatMetrics(enabled: metricsPort != nil)
    public init(enabled: Bool = true) { self.enabled = enabled }

    private var handles: MetricHandles { .shared }

    /// A message was sent `latenessSeconds` after its due time.
    public func sent(latenessSeconds: Double) {
        guard enabled else { return }
        handles.counter("celeris_beat_sends_total").increment()
        handles.timer("celeris_beat_lateness_seconds").recordNanoseconds(Int64(max(0, latenessSeconds) * 1e9))
    }

    /// A due time was recorded handled without a message (`catch_up: skip`).
    public func skipped() {
        guard enabled else { return }
        handles.counter("celeris_beat_skipped_total").increment()
    }

    /// The send script found the due time already handled (another scheduler sent it).
    public func fenced() {
        guard enabled else { return }
        handles.counter("celeris_beat_fenced_total").increment()
    }

    /// This scheduler leads (1) or stands by (0).
    public func leader(_ leads: Bool) {
        guard enabled else { return }
        Gauge(label: "celeris_beat_leader").record(leads ? 1 : 0)
    }

    /// This scheduler took the leader lease.
    public func leadershipAcquired() {
        guard enabled else { return }
        handles.counter("celeris_beat_leadership_acquired_total").increment()
    }

    /// The number of entries scheduled.
    public func entries(_ count: Int) {
        guard enabled else { return }
        Gauge(label: "celeris_beat_entries").record(count)
    }

    /// The schedule was loaded again.
    public func reloaded() {
        guard enabled else { return }
        handles.counter("celeris_beat_schedule_reloads_total").increment()
    }

    /// `count` schedule problems: a file that stopped parsing, a bad run-time entry, an entry
    /// whose next due time cannot be computed.
    public func scheduleErrors(_ count: Int = 1) {
        guard enabled, count > 0 else { return }
        handles.counter("celeris_beat_schedule_errors_total").increment(by: count)
    }

    /// One entry's send script failed (its queue key of another type, say): that entry backs
    /// off, the others go on.
    ///
    ///     metrics.sendError()
    public func sendError() {
        guard enabled else { return }
        handles.counter("celeris_beat_send_errors_total").increment()
    }

    /// A Redis error ended a turn (the scheduler reconnects with backoff).
    public func redisError() {
        guard enabled else { return }
        handles.counter("celeris_beat_redis_errors_total").increment()
    }
}
