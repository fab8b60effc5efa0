import FastCore
import Foundation
import XCTest

/// Celeris on many hosts (network namespaces on one bridge) behind HAProxy, with a worker
/// host killed, a frontend partitioned and the Redis master failed over:
/// Tests/System/many_hosts.py builds and drives it; this test asserts on its report.
final class ManyHostsTests: XCTestCase {
    static func which(_ name: String) -> String? {
        for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"] {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// Skips unless this machine can run the scenario: root, `ip netns add` permitted, haproxy
    /// and redis-sentinel installed (`make test` installs them: TEST_APT_PKGS).
    static func requireMachine() throws {
        guard getuid() == 0 else { throw XCTSkip("many-hosts test needs root (network namespaces)") }
        for tool in ["ip", "haproxy", "redis-sentinel", "redis-server"] where which(tool) == nil {
            throw XCTSkip("many-hosts test needs \(tool) (apt-get install iproute2 haproxy redis-sentinel)")
        }
        let name = "celprobe\(getpid())"
        let add = try run(["ip", "netns", "add", name])
        guard add.status == 0 else {
            throw XCTSkip("many-hosts test: `ip netns add` is not permitted here: \(add.output)")
        }
        _ = try run(["ip", "netns", "del", name])
    }

    static func run(_ argv: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: which(argv[0]) ?? argv[0])
        p.arguments = Array(argv.dropFirst())
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try withSignalsUnblocked { try p.run() }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Runs the scenario script, copying its output to this process's stdout as it comes (its
    /// progress lines show while it runs); returns its exit status and whole output. Note:
    /// `swift test` itself holds the test binary's output back until the binary exits when its
    /// own stdout is not a terminal; the lines stream when the .xctest binary runs directly or
    /// `swift test` runs on a tty (`script -qfec "swift test ..." /dev/null`).
    /// Past `timeout` seconds: SIGTERM (the script removes its namespaces), SIGKILL 10 s later.
    static func runStreaming(_ script: String, _ args: [String], timeout: Double) throws -> (
        status: Int32, output: String
    ) {
        let p = try Spawned(
            try TestPaths.python(), [TestPaths.fixtures.appendingPathComponent(script).standardized.path] + args,
            env: ["PYTHONUNBUFFERED": "1"], cwd: TestPaths.fixtures, name: "many-hosts")
        let reader = try FileHandle(forReadingFrom: p.logURL)
        defer { try? reader.close() }
        var output = Data()
        func copyNew() {
            let chunk = reader.readDataToEndOfFile()  // a regular file: what is written so far
            if !chunk.isEmpty {
                output.append(chunk)
                FileHandle.standardOutput.write(chunk)
            }
        }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline {
            copyNew()
            usleep(100_000)
        }
        let timedOut = p.isRunning
        p.stop(grace: 10)
        copyNew()
        let text = String(decoding: output, as: UTF8.self)
        if timedOut { throw TestFailure("\(script) timed out after \(timeout) s:\n\(text)") }
        return (p.process.terminationStatus, text)
    }

    func testLoadFailuresAndFailoverAcrossHostsBehindHAProxy() throws {
        try Self.requireMachine()
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("many-hosts-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: out) }
        let (status, log) = try Self.runStreaming(
            "../../System/many_hosts.py",
            ["--bin-dir", TestPaths.binDir.path, "--out", out.path, "--deadline", "200"], timeout: 240)
        guard let data = try? Data(contentsOf: out) else {
            return XCTFail("many_hosts.py exited \(status) without writing its report:\n\(log)")
        }
        let r = try JSONParser.parse(Array(data))
        // Exit status 2: the machine cannot build the hosts (no bridge, veth…); the report says why.
        if status == 2, let skip = r["skip"]?.stringValue { throw XCTSkip("many-hosts test: \(skip)") }
        let report = log
        XCTAssertEqual(status, 0, report)
        XCTAssertEqual(r["ok"], true, report)
        XCTAssertEqual(r["namespaces_left"]?.arrayValue?.count, 0, "every namespace removed")

        // These binaries follow the sentinels and enqueue durably: the script's fallback to the
        // ';' failover list (older binaries, or a sentinel lookup that failed) fails this test.
        XCTAssertEqual(
            r["broker"], "sentinel",
            "broker_fallback_reason: \(r["broker_fallback_reason"]?.stringValue ?? "-")\n\(report)")
        XCTAssertEqual(r["durable_enqueue"], true, report)

        // (1) the tutorial's load through the balancer, and a document workflow
        XCTAssertEqual(r["load"]?["acknowledged"], 3000, report)
        XCTAssertGreaterThan(r["load"]?["posts_per_s_through_lb"]?.doubleValue ?? 0, 0)
        XCTAssertEqual(r["workflow"]?["status"], "Completed", report)
        XCTAssertEqual(r["workflow"]?["documents"], 30, report)
        XCTAssertEqual(r["workflow"]?["pairs"], 3, report)

        // (2) a killed worker host's tasks completed by the other celery host
        XCTAssertGreaterThan(r["worker_host_kill"]?["in_flight_at_kill"]?.intValue ?? 0, 0, report)
        XCTAssertNotNil(r["worker_host_kill"]?["recovered_s"]?.doubleValue, report)

        // (3) fe1 partitioned: marked down, POSTs keep succeeding through fe2; at most the one
        // request each of the 4 background clients had on fe1 at the cut fails
        XCTAssertNotNil(r["partition"]?["marked_down_s"]?.doubleValue, report)
        XCTAssertNotNil(r["partition"]?["back_up_after_heal_s"]?.doubleValue, report)
        XCTAssertGreaterThan(r["partition"]?["acknowledged_during"]?.intValue ?? 0, 0, report)
        XCTAssertLessThanOrEqual(r["partition"]?["failed_during"]?.intValue ?? .max, 4, report)

        // (4) Redis failover: a replica promoted, POSTs succeed again
        XCTAssertNotEqual(r["redis_failover"]?["new_master"], r["redis_failover"]?["old_master"], report)
        XCTAssertNotNil(r["redis_failover"]?["posts_ok_again_s"]?.doubleValue, report)

        // Invariants: every acknowledged task has a result, nothing left unacknowledged,
        // no duplicate run other than the killed host's recovered ones and the failover's.
        let counts = try XCTUnwrap(r["counts"], report)
        XCTAssertEqual(counts["lost"], 0, report)
        XCTAssertEqual(counts["completed"], counts["acknowledged"], report)
        XCTAssertEqual(counts["states"]?["SUCCESS"], counts["acknowledged"], report)
        XCTAssertEqual(counts["duplicated_unexplained"], 0, report)
        // The duplicate count above means something only if the task-started events were read:
        // at least 90% of the acknowledged tasks have a run seen through them.
        let acknowledged = try XCTUnwrap(counts["acknowledged"]?.intValue, report)
        let runsSeen = try XCTUnwrap(counts["runs_with_start_events"]?.intValue, report)
        XCTAssertGreaterThanOrEqual(Double(runsSeen), 0.9 * Double(acknowledged), report)
        XCTAssertEqual(r["unacked"], 0, report)
        XCTAssertEqual(r["leftovers"]?["dead_letter"], 0, report)
        for q in ["celery", "fetch_queue", "extract_queue", "compare_queue"] {
            XCTAssertEqual(r["leftovers"]?["queued"]?[q], 0, "\(q)\n\(report)")
        }
    }
}
