import FastCore
import Foundation
import XCTest

/// `argsrepr`/`kwargsrepr` as Celery 5.7 writes them: `saferepr(args, 1024, maxlevels=3)`,
/// so a large argument never makes a large header, task event or retry error, while the
/// arguments themselves travel whole.
final class ArgsReprTests: RedisTestCase {
    static let big = String(repeating: "x", count: 100_000)

    /// Argument lists and keyword arguments whose cut or nesting shows every rule of
    /// Celery's `saferepr`: a long string (cut at the budget, at its last space when it has
    /// one), a string of exactly the budget, long lists, dicts, containers nested past
    /// `maxlevels`, a budget spent inside nested containers, quotes and backslashes.
    static let argsCases: [[JSON]] = [
        [2, 3], [2], [], [nil, true, false, 1.5, -3, 10_000_000_000_000_000], [.string(big)],
        [1, .string(String(repeating: "x", count: 2000))], [.string(String(repeating: "x y z ", count: 300))],
        [.string(String(repeating: "x", count: 1022))], [.string(String(repeating: "x", count: 1023))],
        [.array((0..<1000).map { .int(Int64($0)) })], [.array(Array(repeating: 1, count: 1000))],
        [[[[1, 2]]]], [["a": ["b": ["c": 1]]]], [[[.string(String(repeating: "a", count: 2000)), 1], 2]],
        [[["k": .string(String(repeating: "v", count: 1100))]]], [[], [:]], ["a\nb\\c'd\"", "é ü 中文"],
        [.array((0..<300).map { _ in ["id": 1, "name": "n"] })],
    ]
    static let kwargsCases: [[(key: String, value: JSON)]] = [
        [], [("y", 3)], [("text", .string(big))], [("q'", [1, [2, [3, [4]]]]), ("z", nil)],
        (0..<200).map { (key: "k\($0)", value: .int(Int64($0))) },
    ]

    /// Each case through Python's `celery.utils.saferepr.saferepr(x, 1024, maxlevels=3)`
    /// (as `AMQP.as_task_v2` calls it) and through `TaskMessage.argsRepr`/`kwargsRepr`.
    func testArgsReprIsCelerySaferepr() throws {
        let input = JSON.object([
            ("args", .array(Self.argsCases.map(JSON.array))), ("kwargs", .array(Self.kwargsCases.map(JSON.object))),
        ]).serialized()
        let script = """
            import json, sys
            from celery.utils.saferepr import saferepr
            cases = json.load(sys.stdin)
            out = {"args": [saferepr(tuple(a), 1024, maxlevels=3) for a in cases["args"]],
                   "kwargs": [saferepr(k, 1024, maxlevels=3) for k in cases["kwargs"]]}
            print("RESULT " + json.dumps(out))
            """
        let python = try pythonOutput(script, stdin: input)
        let expectedArgs = try XCTUnwrap(python["args"]?.arrayValue)
        let expectedKwargs = try XCTUnwrap(python["kwargs"]?.arrayValue)
        XCTAssertEqual(expectedArgs.count, Self.argsCases.count)
        XCTAssertEqual(expectedKwargs.count, Self.kwargsCases.count)
        for (args, expected) in zip(Self.argsCases, expectedArgs) {
            let m = TaskMessage(task: "noop", args: args)
            XCTAssertEqual(m.argsRepr, expected.stringValue, "args \(JSON.array(args).serialized().prefix(80))")
        }
        for (kwargs, expected) in zip(Self.kwargsCases, expectedKwargs) {
            let m = TaskMessage(task: "noop", kwargs: kwargs)
            XCTAssertEqual(m.kwargsRepr, expected.stringValue, "kwargs \(JSON.object(kwargs).serialized().prefix(80))")
        }
    }

    /// A message with a 100 KB argument: its headers carry about 1 KiB of repr, cut as
    /// saferepr cuts (`…x...',)`), and the task gets the argument whole.
    func testLargeArgumentHasACutArgsReprAndRunsWhole() throws {
        let worker = InProcessWorker(redis: redis)
        defer { worker.stop() }
        let m = TaskMessage(task: "noop", args: [.string(Self.big)], kwargs: [("pad", .string(Self.big))])
        let envelope = try JSONParser.parse(Array(m.envelope().utf8))
        let argsrepr = try XCTUnwrap(envelope["headers"]?["argsrepr"]?.stringValue)
        let kwargsrepr = try XCTUnwrap(envelope["headers"]?["kwargsrepr"]?.stringValue)
        XCTAssertEqual(argsrepr, "('" + String(repeating: "x", count: 1023) + "...',)")
        XCTAssertEqual(kwargsrepr, "{'pad': '" + String(repeating: "x", count: 1016) + "...'}")
        XCTAssertLessThan(envelope["headers"]?.serialized().utf8.count ?? .max, 3000, "the headers stay small")
        try enqueue([m])
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id)?["status"] == "SUCCESS" })
        XCTAssertEqual(try result(m.id)?["result"], .string(Self.big), "the argument itself is not cut")
    }

    /// Retries exhausted: the MaxRetriesExceededError names the arguments by their cut repr.
    func testMaxRetriesExceededMessageIsBounded() throws {
        let worker = InProcessWorker(redis: redis) { r in
            r.register("give_up", options: TaskOptions(maxRetries: 0)) { ctx in throw ctx.retry(after: 0) }
        }
        defer { worker.stop() }
        let m = TaskMessage(task: "give_up", args: [.string(Self.big)], kwargs: [("k", .string(Self.big))])
        try enqueue([m])
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id)?["status"] == "FAILURE" })
        let r = try XCTUnwrap(try result(m.id))
        XCTAssertEqual(r["result"]?["exc_type"], "MaxRetriesExceededError")
        let text = try XCTUnwrap(r["result"]?["exc_message"]?[0]?.stringValue)
        XCTAssertEqual(text, "Can't retry give_up[\(m.id)] args:\(m.argsRepr) kwargs:\(m.kwargsRepr)")
        XCTAssertLessThan(text.utf8.count, 2200)
        XCTAssertTrue(try eventually(timeout: 5) { try self.client.command("HLEN", "unacked").integer == 0 })
    }

    /// With events on (`-E`), the task-received event Celery's receiver sees carries the
    /// cut repr, not the 100 KB argument.
    func testTaskReceivedEventCarriesTheCutRepr() throws {
        let worker = try CelerisProcess.worker(redis: redis, extra: ["-n", "w1@test", "-E"])
        let m = TaskMessage(task: "noop", args: [.string(Self.big)])
        let r = try captureEvents(seconds: 3, enqueuing: m)
        XCTAssertEqual(r["received"]?[0]?["args"]?.stringValue, m.argsRepr)
        XCTAssertEqual(m.argsRepr.count, 1031)
        XCTAssertEqual(try result(m.id)?["result"], .string(Self.big))
        XCTAssertTrue(worker.isRunning)
    }

    /// The RESULT line of a Python script run with the venv's interpreter, given `stdin`.
    private func pythonOutput(_ script: String, stdin: String) throws -> JSON {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("argsrepr-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("cases.json")
        try stdin.write(to: input, atomically: true, encoding: .utf8)
        let p = try Spawned(
            try TestPaths.python(),
            ["-c", "import sys; sys.stdin = open(sys.argv[1]); exec(sys.argv[2])", input.path, script],
            cwd: TestPaths.fixtures, name: "saferepr")
        XCTAssertTrue(eventually(timeout: 60) { !p.isRunning }, p.log)
        return try resultLine(p.log)
    }
}
