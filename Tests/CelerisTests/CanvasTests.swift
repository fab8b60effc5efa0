import FastCore
import Foundation
import XCTest

/// Chains and chords encoded as Celery 5.7 does, joined with its Redis protocol,
/// across Python and Celeris workers.
final class CanvasTests: RedisTestCase {
    func probe(_ args: [String]) throws -> JSON {
        let out = try runPython("canvas_probe.py", [redis.url] + args)
        guard let line = out.split(separator: "\n").last(where: { $0.hasPrefix("RESULT ") }) else {
            throw TestFailure("no RESULT:\n\(out)")
        }
        return try JSONParser.parse(String(line.dropFirst(7)))
    }

    func pythonWorker(_ name: String) throws -> Spawned {
        let p = try Spawned(
            try TestPaths.python(),
            [
                "-m", "celery", "-A", "fixture_app", "worker", "-P", "solo", "-c", "1", "--loglevel=info", "-n", name,
                "--without-mingle", "--without-gossip",
            ],
            env: ["CELERY_BROKER_URL": redis.url, "FIXTURE_STEP_SECONDS": "0"], cwd: TestPaths.fixtures,
            name: "pyworker")
        XCTAssertTrue(eventually(timeout: 30) { p.log.contains("ready.") }, p.log)
        return p
    }

    func chordKeys() throws -> [String] {
        try client.command("KEYS", "celery-taskset-meta-*").elements?.compactMap(\.text).sorted() ?? []
    }

    func testPythonChainRunsOnCeleris() throws {
        let w = try Celeris.worker(redis: redis)
        XCTAssertEqual(try probe(["chain"])["result"], 16)
        XCTAssertTrue(w.isRunning)
    }

    func testPythonChordRunsOnTwoCelerisWorkersAndCleansUp() throws {
        let a = try Celeris.worker(redis: redis, extra: ["-n", "a@test"])
        let b = try Celeris.worker(redis: redis, extra: ["-n", "b@test"])
        let r = try probe(["chord", "10"])
        XCTAssertEqual(r["result"], .int(Int64((0..<10).map { $0 * 2 }.reduce(0, +))))
        let id = try XCTUnwrap(r["id"]?.stringValue)
        let runs = [a, b].reduce(0) { $0 + $1.log.components(separatedBy: "tsum[\(id)] succeeded").count - 1 }
        XCTAssertEqual(runs, 1)
        // Celery's cleanup: only the ".c" = "done" marker remains.
        let keys = try chordKeys()
        XCTAssertEqual(keys.count, 1, "\(keys)")
        XCTAssertTrue(keys.first?.hasSuffix(".c") ?? false)
        XCTAssertEqual(try client.command("GET", keys[0]).text, "done")
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
    }

    func testFailingHeaderGivesPythonClientAChordError() throws {
        let worker = try Celeris.worker(redis: redis)
        let r = try probe(["chord_error"])
        XCTAssertEqual(r["error"], "TypeError", "get() re-raises the failed header, as Celery does")
        XCTAssertEqual(r["body_state"], "FAILURE")
        XCTAssertEqual(r["body_error"], "ChordError")
        XCTAssertTrue(r["body_message"]?.stringValue?.hasPrefix("Dependency ") ?? false, "\(r)")
        XCTAssertTrue(r["body_message"]?.stringValue?.contains("raised TypeError(") ?? false, "\(r)")
        XCTAssertTrue(worker.isRunning)
    }

    func testCelerisChordRunsOnPythonWorkers() throws {
        let py = try pythonWorker("py@test")
        let flow = Canvas.chain([
            .task(Signature("add", args: [1, 1])),
            .chord((0..<4).map { i in .task(Signature("add", args: [.int(Int64(i))])) }, Signature("tsum")),
        ])
        let (commands, resultId) = flow.sendCommands()
        _ = try client.pipeline(commands)
        // add(1,1)=2 → chord header add(2, i) for i in 0..<4 → tsum = 8 + 6 = 14
        XCTAssertEqual(try probe(["wait", resultId])["result"], 14, py.log)
        XCTAssertFalse(py.log.contains("Traceback"), py.log)
    }

    /// Python and Celeris workers share one chord's header; the body runs exactly once.
    func testMixedPoolsCompleteAChordExactlyOnce() throws {
        let py = try pythonWorker("py@test")
        let cel = try Celeris.worker(redis: redis, extra: ["-n", "cel@test", "-c", "1", "--prefetch-multiplier", "1"])
        let (commands, bodyId) = Canvas.chord(
            (0..<30).map { i in .task(Signature("add", args: [.int(Int64(i)), 0])) }, Signature("tsum")
        ).sendCommands()
        _ = try client.pipeline(commands)
        XCTAssertEqual(try probe(["wait", bodyId])["result"], .int(Int64((0..<30).reduce(0, +))))
        Thread.sleep(forTimeInterval: 0.5)
        let celerisRuns = cel.log.components(separatedBy: "tsum[\(bodyId)] succeeded").count - 1
        let pythonRuns = py.log.components(separatedBy: "tsum[\(bodyId)] succeeded").count - 1
        XCTAssertEqual(celerisRuns + pythonRuns, 1, "celeris \(celerisRuns), python \(pythonRuns)")
        XCTAssertGreaterThan(cel.log.components(separatedBy: "Task add[").count - 1, 0, "celeris took no header task")
        XCTAssertGreaterThan(py.log.components(separatedBy: "Task add[").count - 1, 0, "python took no header task")
    }

    /// `chain(a, group(b…), c)` runs as `a | chord(b…, c)` on Celeris workers.
    func testChainWithAGroupUpgradesToAChord() throws {
        let w = try Celeris.worker(redis: redis)
        let flow = Canvas.chain([
            .task(Signature("add", args: [1, 2])),
            .group((0..<3).map { i in .task(Signature("add", args: [.int(Int64(i))])) }),
            .task(Signature("tsum")),
            .task(Signature("add", args: [100])),
        ])
        let (commands, resultId) = flow.sendCommands()
        _ = try client.pipeline(commands)
        // add(1,2)=3 → [3+0, 3+1, 3+2] → tsum = 12 → add(12, 100) = 112
        XCTAssertEqual(try probe(["wait", resultId])["result"], 112, w.log)
    }
}
