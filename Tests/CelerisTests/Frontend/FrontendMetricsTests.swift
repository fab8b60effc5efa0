import FastCore
import Foundation
import XCTest

/// `GET /metrics` on the frontend: Prometheus text from real traffic.
final class FrontendMetricsTests: RedisTestCase {
    func testRequestsLatencyConnectionsWebSocketsAndQueueDepths() throws {
        let port = freePort()
        let frontend = try CelerisProcess.frontend(redis: redis, port: port)
        for _ in 0..<3 { XCTAssertEqual(try HTTPClient.request("POST", port: port, path: "/tasks").status, 200) }
        for _ in 0..<2 { _ = try HTTPClient.request("GET", port: port, path: "/status/abc") }
        _ = try HTTPClient.request("GET", port: port, path: "/nope")
        let ws = try WSFrame.open(port: port)
        try client.command("PUBLISH", "task_status", #"{"task_id": "m", "state": "PROGRESS"}"#)
        _ = try WSFrame.read(ws)
        var m: [String: Double] = [:]
        XCTAssertTrue(
            try eventually(timeout: 5, interval: 0.2) {
                m = try Prometheus.scrape(port: port)
                return m[#"celeris_queue_depth{queue="celery"}"#] == 3 && m["celeris_ws_messages_delivered_total"] == 1
            }, "\(m)")
        XCTAssertEqual(m[#"celeris_http_requests_total{route="/tasks",status="200"}"#], 3)
        XCTAssertEqual(m[#"celeris_http_requests_total{route="/status",status="200"}"#], 2)
        XCTAssertEqual(m[#"celeris_http_requests_total{route="other",status="404"}"#], 1)
        XCTAssertEqual(m[#"celeris_http_request_duration_seconds_count{route="/tasks"}"#], 3)
        XCTAssertEqual(m["celeris_ws_open"], 1)
        XCTAssertGreaterThanOrEqual(m["celeris_http_open_connections"] ?? 0, 1)
        XCTAssertNotNil(m["celeris_redis_pending_commands"])
        XCTAssertTrue(frontend.isRunning)
    }
}
