import FastCore
import Foundation
import XCTest

/// Typed tasks (`CelerisTask`, async and blocking) run by a Celeris worker and called by a
/// real Python Celery 5.7 client, by position and by name; bad arguments come back to
/// Python as the `TypeError` it re-raises.
final class TypedTaskTests: RedisTestCase {
    struct AddArguments: Codable, Sendable {
        var x: Int
        var y: Int
    }
    struct Sum: Codable, Sendable {
        var total: Int
        var inputs: [Int]
    }
    struct Later: Codable, Sendable {
        var at: Date
        var seconds: Double?
    }
    struct Step: Codable, Sendable {
        var done: Int
        var total: Int
    }

    static let addAsync = CelerisTask<AddArguments, Sum>("typed_add") { a, _ in
        await Task.yield()
        return Sum(total: a.x + a.y, inputs: [a.x, a.y])
    }
    static let addBlocking = CelerisTask<AddArguments, Int>("typed_add_blocking", blocking: { a, _ in a.x + a.y })
    static let later = CelerisTask<Later, Date>("typed_later") { a, _ in
        a.at.addingTimeInterval(a.seconds ?? 3600)
    }

    private func startWorker(register extra: @escaping (inout TaskRegistry) -> Void = { _ in }) -> InProcessWorker {
        InProcessWorker(redis: redis) { r in
            r.register(Self.addAsync)
            r.register(Self.addBlocking)
            r.register(Self.later)
            extra(&r)
        }
    }

    /// Runs `calls` (`[name, args, kwargs]`) through Python's `send_task` and
    /// `AsyncResult.get()`: each is `["ok", result]` or `[exception class, str(e), is TypeError]`.
    private func pythonCalls(_ calls: JSON) throws -> [JSON] {
        let script = """
            import json, sys
            from datetime import datetime, timezone
            from celery import Celery
            app = Celery("typed", broker=sys.argv[1], backend=sys.argv[1])
            out = []
            for name, args, kwargs in json.loads(sys.argv[2]):
                args = [datetime.fromisoformat(a[5:]) if isinstance(a, str) and a.startswith("date:") else a for a in args]
                try:
                    v = app.send_task(name, args, kwargs).get(timeout=20)
                    out.append(["ok", v.isoformat() if isinstance(v, datetime) else v])
                except Exception as e:
                    out.append([type(e).__name__, str(e), isinstance(e, TypeError)])
            print("RESULT " + json.dumps(out))
            """
        let p = try Spawned(try TestPaths.python(), ["-c", script, redis.url, calls.serialized()], name: "pytyped")
        XCTAssertTrue(eventually(timeout: 90) { !p.isRunning }, p.log)
        return try XCTUnwrap(try resultLine(p.log).arrayValue, p.log)
    }

    func testPythonCallsTypedTasksByPositionAndByName() throws {
        let worker = startWorker()
        defer { worker.stop() }
        let r = try pythonCalls([
            ["typed_add", [2, 3], [:] as JSON],
            ["typed_add", [], ["y": 3, "x": 2]],
            ["typed_add", [2], ["y": 3]],
            ["typed_add_blocking", [40, 2], [:] as JSON],
            ["typed_add_blocking", [], ["x": 40, "y": 2]],
            ["typed_later", ["date:2026-11-21T07:30:17+00:00"], [:] as JSON],
            ["typed_later", [], ["at": "2026-11-21T07:30:17+00:00", "seconds": 1.5]],
        ])
        let sum: JSON = ["ok", ["total": 5, "inputs": [2, 3]]]
        XCTAssertEqual(r.count, 7)
        XCTAssertEqual(Array(r.prefix(3)), [sum, sum, sum])
        XCTAssertEqual(Array(r[3...4]), [["ok", 42], ["ok", 42]])
        // A datetime sent by Python arrives as a Date and goes back as a datetime.
        XCTAssertEqual(r[5], ["ok", "2026-11-21T08:30:17+00:00"])
        XCTAssertEqual(r[6], ["ok", "2026-11-21T07:30:18.500000+00:00"])
    }

    func testBadArgumentsAreTypeErrorsPythonReRaises() throws {
        let worker = startWorker()
        defer { worker.stop() }
        let r = try pythonCalls([
            ["typed_add", [1, 2, 3], [:] as JSON],
            ["typed_add", [1], [:] as JSON],
            ["typed_add", [1, 2], ["z": 3]],
            ["typed_add", [1], ["x": 2]],
            ["typed_add_blocking", ["1", 2], [:] as JSON],
            ["typed_add_blocking", [1.5, 2], [:] as JSON],
        ])
        XCTAssertEqual(
            r,
            [
                ["TypeError", "typed_add() takes 2 positional arguments but 3 were given", true],
                ["TypeError", "typed_add() missing 1 required positional argument: 'y'", true],
                ["TypeError", "typed_add() got an unexpected keyword argument 'z'", true],
                ["TypeError", "typed_add() got multiple values for argument 'x'", true],
                ["TypeError", "typed_add_blocking() argument 'x' must be int, not str", true],
                ["TypeError", "typed_add_blocking() argument 'x' must be int, not float", true],
            ])
        XCTAssertTrue(try eventually(timeout: 5) { try self.client.command("HLEN", "unacked").integer == 0 })
    }

    /// `ctx.progress(_:)` stores a PROGRESS state with the encoded meta before the result.
    func testProgressIsStoredAsEncodedMeta() throws {
        let release = DispatchSemaphore(value: 0)
        let stepped = CelerisTask<NoArguments, String>(
            "typed_steps",
            blocking: { _, ctx in
                try ctx.progress(Step(done: 1, total: 2))
                guard release.wait(timeout: .now() + 30) == .success else {
                    throw TaskFailure(type: "RuntimeError", message: "not released")
                }
                return "done"
            })
        let worker = startWorker { $0.register(stepped) }
        defer { worker.stop() }
        let m = TaskMessage(task: "typed_steps")
        try enqueue([m])
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id)?["status"] == "PROGRESS" })
        XCTAssertEqual(try result(m.id)?["result"], ["done": 1, "total": 2])
        release.signal()
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id)?["status"] == "SUCCESS" })
        XCTAssertEqual(try result(m.id)?["result"], "done")
    }
}
