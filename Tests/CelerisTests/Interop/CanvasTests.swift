import FastCore
import Foundation
import XCTest

/// Chains and chords encoded as Celery 5.7 does, joined with its Redis protocol,
/// across Python and Celeris workers.
final class CanvasTests: RedisTestCase {
    func probe(_ args: [String]) throws -> JSON { try resultLine(try runPython("canvas_probe.py", [redis.url] + args)) }

    func pythonWorker(_ name: String) throws -> Spawned {
        try PythonWorker.spawn(redis: redis, name: name, env: ["FIXTURE_STEP_SECONDS": "0"])
    }

    func chordKeys() throws -> [String] { try client.keys("celery-taskset-meta-*").sorted() }

    func testPythonChainRunsOnCeleris() throws {
        let w = try CelerisProcess.worker(redis: redis)
        XCTAssertEqual(try probe(["chain"])["result"], 16)
        XCTAssertTrue(w.isRunning)
    }

    func testPythonChordRunsOnTwoCelerisWorkersAndCleansUp() throws {
        let a = try MetricsWorker(redis: redis, extra: ["-n", "a@test"])
        let b = try MetricsWorker(redis: redis, extra: ["-n", "b@test"])
        let r = try probe(["chord", "10"])
        XCTAssertEqual(r["result"], .int(Int64((0..<10).map { $0 * 2 }.reduce(0, +))))
        XCTAssertNotNil(r["id"]?.stringValue)
        // The body ran once across both workers (the probe's only tsum).
        XCTAssertEqual(try a.succeeded("tsum") + b.succeeded("tsum"), 1)
        XCTAssertEqual(try a.received("tsum") + b.received("tsum"), 1)
        // Celery's cleanup: only the ".c" = "done" marker remains.
        let keys = try chordKeys()
        XCTAssertEqual(keys.count, 1, "\(keys)")
        XCTAssertTrue(keys.first?.hasSuffix(".c") ?? false)
        XCTAssertEqual(try client.command("GET", keys[0]).text, "done")
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
    }

    func testFailingHeaderGivesPythonClientAChordError() throws {
        let worker = try CelerisProcess.worker(redis: redis)
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
        // Python ran all six tasks to success (the chain's add, four header adds, tsum), each once.
        XCTAssertTrue(
            try eventually(timeout: 5) { try self.client.command("HLEN", PythonWorker.succeededKey).integer == 6 },
            py.log)
        XCTAssertEqual(try client.pythonSuccesses(resultId), 1)
        let runs = try client.command("HVALS", PythonWorker.succeededKey).elements?.compactMap(\.text) ?? []
        XCTAssertEqual(runs, Array(repeating: "1", count: 6))
    }

    /// Python and Celeris workers share one chord's header; the body runs exactly once.
    func testMixedPoolsCompleteAChordExactlyOnce() throws {
        let py = try pythonWorker("py@test")
        let cel = try MetricsWorker(redis: redis, extra: ["-n", "cel@test", "-c", "1", "--prefetch-multiplier", "1"])
        let (commands, bodyId) = Canvas.chord(
            (0..<30).map { i in .task(Signature("add", args: [.int(Int64(i)), 0])) }, Signature("tsum")
        ).sendCommands()
        _ = try client.pipeline(commands)
        XCTAssertEqual(try probe(["wait", bodyId])["result"], .int(Int64((0..<30).reduce(0, +))))
        // The 30 header tasks and the body ran on one side or the other, each once: the
        // Celeris counters and the Python worker's per-id counts add up to 31.
        var ran = (celeris: 0, python: 0)
        XCTAssertTrue(
            try eventually(timeout: 5) {
                ran.celeris = try cel.succeeded("add") + cel.succeeded("tsum")
                ran.python = Int(try self.client.command("HLEN", PythonWorker.succeededKey).integer ?? 0)
                return ran.celeris + ran.python >= 31
            }, "\(ran)\n\(py.log)")
        XCTAssertEqual(ran.celeris + ran.python, 31, "\(ran)")
        let pythonCounts = try client.command("HVALS", PythonWorker.succeededKey).elements?.compactMap(\.text) ?? []
        XCTAssertEqual(Set(pythonCounts), ["1"], "no task ran twice on Python")
        let celerisRuns = try cel.succeeded("tsum")
        let pythonRuns = try client.pythonSuccesses(bodyId)
        XCTAssertEqual(celerisRuns + pythonRuns, 1, "celeris \(celerisRuns), python \(pythonRuns)")
        XCTAssertGreaterThan(try cel.succeeded("add"), 0, "celeris took no header task")
        XCTAssertGreaterThan(ran.python - pythonRuns, 0, "python took no header task")
    }

    /// `chain(a, group(b…), c)` runs as `a | chord(b…, c)` on Celeris workers.
    func testChainWithAGroupUpgradesToAChord() throws {
        let w = try CelerisProcess.worker(redis: redis)
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
