import FastCore
import Foundation
import XCTest

/// `--metrics-port`: Prometheus text from a real worker process.
final class WorkerMetricsTests: XCTestCase {
    func testPrometheusMetricsCountTasksAndSampleGauges() throws {
        let redis = try RedisServer()
        let client = try redis.client()
        let port = freePort()
        let worker = try CelerisProcess.worker(
            redis: redis, extra: ["--metrics-port", "\(port)", "--metrics-host", "127.0.0.1", "-c", "3"])
        var producer = TaskProducer()
        let ok = (0..<5).map { TaskMessage(task: "add", args: [.int(Int64($0)), 1]) }
        let bad = [TaskMessage(task: "add", args: ["x", 1]), TaskMessage(task: "nope")]
        _ = try client.pipeline((ok + bad).flatMap { producer.sendCommands(for: $0) })
        _ = try client.command("LPUSH", "other_queue", "not consumed")

        func scrape() throws -> [String: Double] { try Prometheus.scrape(port: port) }
        var m: [String: Double] = [:]
        // Counters move with each task; the gauges are sampled once a second, so the
        // sample taken in the turn that claimed the tasks may still show them queued, and
        // one taken before the failing task started shows nothing in flight: wait for
        // every counter, not the gauges alone.
        XCTAssertTrue(
            try eventually(timeout: 10, interval: 0.2) {
                m = try scrape()
                return m[#"celeris_tasks_succeeded_total{task="add"}"#] == 5
                    && m[#"celeris_tasks_failed_total{task="add"}"#] == 1
                    && m[#"celeris_tasks_failed_total{task="nope"}"#] == 1 && m["celeris_pool_size"] == 3
                    && m[#"celeris_queue_depth{queue="celery"}"#] == 0 && m["celeris_tasks_in_flight"] == 0
            }, "\(m)\n\(worker.log)")
        XCTAssertEqual(m[#"celeris_tasks_received_total{task="add"}"#], 6)
        XCTAssertEqual(m[#"celeris_tasks_failed_total{task="add"}"#], 1)
        XCTAssertEqual(m[#"celeris_tasks_failed_total{task="nope"}"#], 1)
        XCTAssertEqual(m[#"celeris_task_runtime_seconds_count{task="add"}"#], 6)
        XCTAssertEqual(m[#"celeris_queue_depth{queue="celery"}"#], 0)
        XCTAssertEqual(m["celeris_tasks_in_flight"], 0)
        XCTAssertNotNil(m["celeris_tasks_prefetched"])
        XCTAssertEqual(try HTTPClient.request("GET", port: port, path: "/other").status, 404)
    }
}
