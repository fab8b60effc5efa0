import Metrics

/// The frontend's numbers through swift-metrics (Prometheus text on `GET /metrics`).
/// One per loop: its per-request handles are cached without a lock.
///
///     let metrics = FrontendMetrics()
///     metrics.request(route: "/tasks", status: 200, seconds: 0.0004)
final class FrontendMetrics {
    init() {}

    private var handles: MetricHandles { .shared }
    private struct RouteStatus: Hashable {
        let route: String
        let status: Int
    }
    // Exclusivity: used on one loop's thread only: the run-time check is pure cost.
    @exclusivity(unchecked) private var requestHandles: [RouteStatus: (Counter, Timer)] = [:]

    func request(route: String, status: Int, seconds: Double) {
        let key = RouteStatus(route: route, status: status)
        let (counter, timer) =
            requestHandles[key]
            ?? {
                let made = (
                    handles.counter("celeris_http_requests_total", [("route", route), ("status", String(status))]),
                    handles.timer("celeris_http_request_duration_seconds", [("route", route)])
                )
                requestHandles[key] = made
                return made
            }()
        counter.increment()
        timer.recordNanoseconds(Int64(seconds * 1e9))
    }

    func fanOut(delivered: Int, dropped: Int, closedSlow: Int) {
        handles.counter("celeris_ws_messages_delivered_total").increment(by: delivered)
        handles.counter("celeris_ws_messages_dropped_total").increment(by: dropped)
        handles.counter("celeris_ws_slow_clients_closed_total").increment(by: closedSlow)
    }

    /// Tasks one loop's `ResultWatch` follows (`/ws` subscriptions, status waits).
    func watchedTasks(loop: Int, _ count: Int) {
        Gauge(label: "celeris_frontend_watched_tasks", dimensions: [("loop", String(loop))]).record(count)
    }

    func sample(connections: Int, webSockets: Int, redisPending: Int, queueDepths: [String: Int]) {
        Gauge(label: "celeris_http_open_connections").record(connections)
        Gauge(label: "celeris_ws_open").record(webSockets)
        Gauge(label: "celeris_redis_pending_commands").record(redisPending)
        for (q, n) in queueDepths { Gauge(label: "celeris_queue_depth", dimensions: [("queue", q)]).record(n) }
    }
}
