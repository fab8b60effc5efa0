import FastCore
import Foundation
import XCTest

/// Celery's `app.control.broadcast` with arguments out of bounds, ill-typed or absurd:
/// each command gets an `{"error": …}` reply and changes nothing; the worker keeps
/// its pool and limits and goes on running tasks.
final class RemoteControlBoundsTests: RedisTestCase {
    /// Commands a worker must refuse: `[command, arguments]`.
    static let refused: [JSON] = [
        ["pool_grow", ["n": .int(Int64.max)]],
        ["pool_grow", ["n": .int(Int64.min)]],
        ["pool_grow", ["n": -5]],
        ["pool_grow", ["n": 1_000_000]],
        ["pool_grow", ["n": .int(Int64(ControlRequest.maxConcurrency - 1))]],  // 2 + 4095 slots: one too many
        ["pool_grow", ["n": "lots"]],
        ["pool_grow", ["n": 2.5]],
        ["pool_shrink", ["n": .int(Int64.max)]],
        ["pool_shrink", ["n": .int(Int64.min)]],
        ["pool_shrink", ["n": 2]],  // of 2 slots: none would be left
        ["autoscale", ["max": 1_000_000, "min": 1]],
        ["autoscale", ["max": "x", "min": 1]],
        ["autoscale", ["max": 2, "min": 5]],
        ["autoscale", ["max": 4, "min": -1]],
        ["rate_limit", ["task_name": "add", "rate_limit": "0.000000001/s"]],
        ["rate_limit", ["task_name": "add", "rate_limit": "1e-300/s"]],
        ["rate_limit", ["task_name": "add", "rate_limit": "inf"]],
        ["rate_limit", ["task_name": "add", "rate_limit": "nan/s"]],
        ["rate_limit", ["task_name": "add", "rate_limit": "10/"]],
        ["time_limit", ["task_name": "create_task", "soft": .double(.nan), "hard": 5]],
        ["time_limit", ["task_name": "create_task", "soft": 1, "hard": .double(.infinity)]],
        ["time_limit", ["task_name": "create_task", "soft": 1e300, "hard": nil]],
        ["time_limit", ["task_name": "create_task", "soft": "soon", "hard": nil]],
        ["time_limit", ["task_name": "create_task", "soft": -1, "hard": -1]],
        ["add_consumer", ["queue": .string("a" + QueueKeys.separator + "b")]],
        ["add_consumer", ["queue": .string(String(repeating: "q", count: 1000))]],
    ]

    func testOutOfBoundsControlArgumentsAreRefusedAndChangeNothing() throws {
        let worker = try CelerisProcess.worker(redis: redis, extra: ["-n", "w1@test", "-c", "2"])
        let sent = JSON.array(Self.refused).serialized()
        let replies = try resultLine(try runPython("control_probe.py", [redis.url, "broadcast", sent]))
        XCTAssertEqual(replies.arrayValue?.count, Self.refused.count, worker.log)
        for (command, reply) in zip(Self.refused, replies.arrayValue ?? []) {
            let answer = reply[0]?["w1@test"]
            XCTAssertNotNil(answer?["error"]?.stringValue, "\(command.serialized()) → \(reply.serialized())")
            XCTAssertNil(answer?["ok"], "\(command.serialized()) → \(reply.serialized())")
        }
        XCTAssertTrue(worker.isRunning, worker.log)
        // Nothing changed: two slots, no autoscaler, no queue added.
        let r = try resultLine(try runPython("control_probe.py", [redis.url, "inspect"]))
        XCTAssertEqual(r["stats"]?["w1@test"]?["pool"]?["max-concurrency"], 2)
        XCTAssertNil(r["stats"]?["w1@test"]?["pool"]?["autoscaler"])
        XCTAssertEqual(r["active_queues"]?["w1@test"]?.arrayValue?.compactMap { $0["name"] }, ["celery"])
        // No rate limit on add (each add runs at once) and no time limit on create_task.
        let adds = (0..<3).map { TaskMessage(task: "add", args: [.int(Int64($0)), 1]) }
        let steps = TaskMessage(task: "create_task", args: [2])
        try enqueue(adds + [steps])
        XCTAssertTrue(
            try eventually(timeout: 10) {
                try (adds + [steps]).allSatisfy { try self.result($0.id)?["status"] == "SUCCESS" }
            }, worker.log)
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
    }

    /// Commands within the bounds are applied (a pool stays between 1 and `maxConcurrency` slots).
    func testCommandsWithinTheBoundsAreApplied() throws {
        let worker = try CelerisProcess.worker(redis: redis, extra: ["-n", "w1@test", "-c", "2"])
        let sent = JSON.array([
            ["pool_grow", ["n": 4]], ["pool_shrink", ["n": 4]], ["pool_shrink", nil], ["pool_grow", ["n": "4"]],
            ["time_limit", ["task_name": "create_task", "soft": 0, "hard": .double(ControlRequest.maxTimeLimit)]],
            ["rate_limit", ["task_name": "add", "rate_limit": "1/h"]],
        ]).serialized()
        let replies = try resultLine(try runPython("control_probe.py", [redis.url, "broadcast", sent]))
        let answers = replies.arrayValue?.map { $0[0]?["w1@test"] } ?? []
        XCTAssertEqual(
            answers,
            [
                ["ok": "pool will grow"], ["ok": "pool will shrink"], ["ok": "pool will shrink"],
                ["ok": "pool will grow"], ["ok": "time limits set successfully"],
                ["ok": "new rate limit set successfully"],
            ], worker.log)
        // 2 + 4 - 4 - 1 + 4 = 5 slots.
        let stats = try resultLine(try runPython("control_probe.py", [redis.url, "stats"]))
        XCTAssertEqual(stats["w1@test"]?["pool"]?["max-concurrency"], 5)
    }
}
