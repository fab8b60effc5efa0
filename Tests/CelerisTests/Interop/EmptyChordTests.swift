import FastCore
import Foundation
import XCTest

/// A chord whose header is empty: no header task will ever count it down, so, as
/// Celery 5.7's `_chord.run` does (`body.delay([])`), the body is sent at once with an
/// empty list of results, in its chord's group, and no chord counter is written.
final class EmptyChordTests: RedisTestCase {
    /// The body's stored result once the workflow is done; nothing left claimed or queued.
    private func assertBodyRan(_ bodyId: String, result expected: JSON, worker: InProcessWorker) throws {
        XCTAssertTrue(
            try eventually(timeout: 20) { try self.result(bodyId)?["status"] == "SUCCESS" },
            "the chord body never ran: \(worker.errors.get())")
        XCTAssertEqual(try result(bodyId)?["result"], expected)
        XCTAssertTrue(try eventually(timeout: 5) { try self.client.command("HLEN", "unacked").integer == 0 })
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 0)
        XCTAssertEqual(try client.keys("celery-taskset-meta-*"), [], "an empty chord writes no chord counter")
    }

    /// A task replacing itself with `chord([], tsum)` (the documents workflow over an
    /// empty directory): its id ends SUCCESS with `tsum([]) = 0`.
    func testTaskReplacedByAnEmptyChordRunsTheBodyWithNoResults() throws {
        let worker = InProcessWorker(redis: redis) { r in
            r.register("fan_out_nothing") { ctx in throw ctx.replace(with: .chord([], Signature("tsum"))) }
        }
        defer { worker.stop() }
        let m = TaskMessage(task: "fan_out_nothing")
        try enqueue([m])
        try assertBodyRan(m.id, result: 0, worker: worker)
    }

    /// A chain step that is an empty chord, followed by one more step: the body gets `[]`
    /// (not the previous step's result, which would have gone to the header), and the
    /// chain goes on from the body's result.
    func testEmptyChordInAChainRunsItsBodyAndTheRestOfTheChain() throws {
        let worker = InProcessWorker(redis: redis)
        defer { worker.stop() }
        let flow = Canvas.chain([
            .task(Signature("add", args: [1, 2])),
            .chord([], Signature("noop")),
            .task(Signature("tsum")),
        ])
        let (commands, resultId) = flow.sendCommands()
        _ = try client.pipeline(commands)
        try assertBodyRan(resultId, result: 0, worker: worker)
    }

    /// Sent directly (the encoder, not a worker): the body is queued at once, with `[]`
    /// first in its arguments and its chord's group id, as Celery sends it.
    func testEmptyChordSendsItsBodyAtOnceAsCeleryDoes() throws {
        let (commands, bodyId) = Canvas.chord([], Signature("noop")).sendCommands()
        _ = try client.pipeline(commands)
        let queued = try client.command("LRANGE", "celery", "0", "-1").elements ?? []
        XCTAssertEqual(queued.count, 1)
        let body = try TaskMessage.decode(try XCTUnwrap(queued.first?.bytes))
        XCTAssertEqual(body.id, bodyId)
        XCTAssertEqual(body.task, "noop")
        XCTAssertEqual(body.args, [[]])
        XCTAssertNotNil(body.group)
        XCTAssertEqual(body.argsRepr, "([],)")
        let worker = InProcessWorker(redis: redis)
        defer { worker.stop() }
        try assertBodyRan(bodyId, result: [], worker: worker)
    }

    /// Python Celery's `chain(add.s(1, 2), chord([], noop.s()))`: Python sends the first
    /// step; the Celeris worker that runs it sends the empty chord from `embed.chain`.
    func testPythonChainEndingInAnEmptyChordCompletesOnCeleris() throws {
        let worker = InProcessWorker(redis: redis)
        defer { worker.stop() }
        let script = """
            import sys
            from celery import Celery, chain, chord
            app = Celery("probe", broker=sys.argv[1], backend=sys.argv[1])
            r = chain(app.signature("add", (1, 2)), chord([], app.signature("noop")))()
            print("RESULT", '{"id": "%s"}' % r.id)
            """
        // Python sends and names the body's id; the body's result is read from Redis. (A
        // Python `get()` here timed out once under CI load: whether the body had not run or
        // Celery's subscription missed it is not known; this waits on what Celeris stored.)
        let p = try Spawned(try TestPaths.python(), ["-c", script, redis.url], cwd: TestPaths.fixtures, name: "py")
        XCTAssertTrue(eventually(timeout: 30) { !p.isRunning }, p.log)
        let out = try resultLine(p.log)
        let bodyId = try XCTUnwrap(out["id"]?.stringValue)
        try assertBodyRan(bodyId, result: [], worker: worker)
    }
}
