import Foundation
import XCTest

/// Prometheus text exposition, as the worker's `--metrics-port` and the frontend's
/// `GET /metrics` serve it: sample name with labels → value.
enum Prometheus {
    /// The samples of an exposition (comments and unparsable lines skipped).
    static func parse(_ text: String) -> [String: Double] {
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let v = Double(parts[1]) { values[String(parts[0])] = v }
        }
        return values
    }

    /// `GET /metrics` on 127.0.0.1:`port`, checked to be a 200 with Prometheus text.
    static func scrape(port: Int, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Double] {
        let r = try HTTPClient.request("GET", port: port, path: "/metrics")
        XCTAssertEqual(r.status, 200, file: file, line: line)
        XCTAssertTrue(r.headers["content-type"]?.hasPrefix("text/plain") ?? false, file: file, line: line)
        return parse(r.text)
    }
}

/// A spawned celeris-worker with `--metrics-port`: what it ran, read from its counters.
struct MetricsWorker {
    let process: Spawned
    let metricsPort: Int

    var log: String { process.log }
    var isRunning: Bool { process.isRunning }

    /// Start a worker as `CelerisProcess.worker` does, with its metrics served on a free port.
    init(redis: RedisServer, extra: [String] = [], step: String = "0") throws {
        metricsPort = freePort()
        process = try CelerisProcess.worker(
            redis: redis, extra: extra + ["--metrics-port", "\(metricsPort)", "--metrics-host", "127.0.0.1"],
            step: step)
    }

    func metrics() throws -> [String: Double] { try Prometheus.scrape(port: metricsPort) }

    /// A per-task counter (`celeris_tasks_<outcome>_total{task=…}`); 0 before its first increment.
    func count(_ outcome: String, _ task: String) throws -> Int {
        Int(try metrics()["celeris_tasks_\(outcome)_total{task=\"\(task)\"}"] ?? 0)
    }

    func succeeded(_ task: String) throws -> Int { try count("succeeded", task) }
    func received(_ task: String) throws -> Int { try count("received", task) }
}
