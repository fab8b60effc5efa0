import FastCore
import Foundation
import XCTest

/// Messages whose workflow parts (`embed.chain`, `embed.callbacks`, `embed.chord`) or
/// `timelimit` header are malformed: each task fails with a ValueError stored as its
/// FAILURE, its delivery is acknowledged, and the worker goes on running tasks.
final class HostileMessageTests: RedisTestCase {
    /// A signature as Celery encodes one, with `fields` replaced.
    static func signature(_ fields: [(String, JSON)]) -> JSON {
        var sig: JSON = [
            "task": "add", "args": [1], "kwargs": [:], "options": ["task_id": "next-id"], "subtask_type": nil,
            "immutable": false,
        ]
        for (k, v) in fields { sig = sig.setting(k, v) }
        return sig
    }

    /// Embeds a worker cannot follow, with what the failure must name.
    static let malformedEmbeds: [(embed: JSON, says: String)] = [
        (["chain": [signature([("options", nil)])]], "embed.chain[-1]: options must be an object, got None"),
        (["chain": [signature([("options", 5)])]], "options must be an object, got int"),
        (["chain": [5]], "embed.chain[-1]: not an object but int"),
        (["chain": [["args": []]]], "task must be a non-empty string, got nothing"),
        (["chain": [signature([("task", 7)])]], "task must be a non-empty string, got int"),
        (["chain": [signature([("args", "x")])]], "args must be a list, got str"),
        (["chain": [signature([("kwargs", [1])])]], "kwargs must be an object, got list"),
        (["chain": [signature([("options", ["task_id": 5])])]], "options.task_id must be a non-empty string"),
        (["chain": [signature([("options", ["task_id": ""])])]], "options.task_id must be a non-empty string"),
        (["chain": [signature([("immutable", "yes")])]], "immutable must be a bool, got str"),
        (["chain": "add"], "malformed embed.chain: not a list but str"),
        (["callbacks": [signature([("options", nil)])]], "embed.callbacks[0]: options must be an object"),
        (["callbacks": signature([])], "malformed embed.callbacks: not a list but dict"),
        (
            [
                "chain": [
                    signature([
                        ("task", "celery.chain"), ("subtask_type", "chain"),
                        ("kwargs", ["tasks": [signature([]), signature([("options", nil)])]]),
                    ])
                ]
            ], "embed.chain[-1].kwargs.tasks[1]: options must be an object, got None"
        ),
        (
            ["chain": [signature([("task", "celery.group"), ("subtask_type", "group"), ("kwargs", ["tasks": 3])])]],
            "kwargs.tasks must be a list of signatures, got int"
        ),
        (
            [
                "chain": [
                    signature([
                        ("task", "celery.chord"), ("subtask_type", "chord"),
                        ("kwargs", ["header": [signature([])], "body": signature([("options", nil)])]),
                    ])
                ]
            ], "embed.chain[-1].kwargs.body: options must be an object, got None"
        ),
        (
            [
                "chain": [
                    signature([
                        ("task", "celery.chord"), ("subtask_type", "chord"), ("kwargs", ["header": [signature([])]]),
                    ])
                ]
            ], "kwargs.body must be a signature, got nothing"
        ),
    ]

    func testMalformedWorkflowPartsFailTheTaskNotTheWorker() throws {
        let worker = InProcessWorker(redis: redis)
        defer { worker.stop() }
        var messages: [TaskMessage] = []
        for c in Self.malformedEmbeds {
            var m = TaskMessage(task: "add", args: [1, 2])
            m.embed = TaskMessage.noEmbed
            for (k, v) in c.embed.objectPairs ?? [] { m.embed = m.embed.setting(k, v) }
            messages.append(m)
        }
        // A chord header whose chord callback is malformed.
        var header = TaskMessage(task: "add", args: [1, 2])
        header.group = "group-1"
        header.groupIndex = 0
        header.embed = TaskMessage.noEmbed.setting("chord", Self.signature([("task", "tsum"), ("options", nil)]))
        messages.append(header)
        let says = Self.malformedEmbeds.map(\.says) + ["embed.chord: options must be an object, got None"]
        try enqueue(messages)
        try assertFailed(messages, saying: says)
        try assertWorkerGoesOn()
    }

    func testMalformedTimeLimitHeaderFailsTheTask() throws {
        let worker = InProcessWorker(redis: redis)
        defer { worker.stop() }
        let limits: [(Double?, Double?)] = [(-1, nil), (nil, -5), (.nan, nil), (nil, .infinity), (-.infinity, 3)]
        let messages = limits.map { l -> TaskMessage in
            var m = TaskMessage(task: "add", args: [1, 2])
            m.timeLimit = l
            return m
        }
        try enqueue(messages)
        try assertFailed(messages, saying: Array(repeating: "malformed timelimit header", count: messages.count))
        try assertWorkerGoesOn()
    }

    /// Each message has a FAILURE whose ValueError message contains its `says`; nothing
    /// is left claimed and nothing the malformed parts named was sent.
    private func assertFailed(_ messages: [TaskMessage], saying says: [String]) throws {
        XCTAssertTrue(try eventually(timeout: 10) { try messages.allSatisfy { try self.result($0.id) != nil } })
        for (m, text) in zip(messages, says) {
            let r = try XCTUnwrap(try result(m.id), text)
            XCTAssertEqual(r["status"], "FAILURE", text)
            XCTAssertEqual(r["result"]?["exc_type"], "ValueError", text)
            let message = r["result"]?["exc_message"]?[0]?.stringValue ?? ""
            XCTAssertTrue(message.contains(text), "\(message) does not say \(text)")
        }
        XCTAssertTrue(try eventually(timeout: 5) { try self.client.command("HLEN", "unacked").integer == 0 })
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 0, "a follow-up was sent")
        XCTAssertNil(try result("next-id"))
    }

    private func assertWorkerGoesOn() throws {
        let after = TaskMessage(task: "add", args: [2, 3])
        try enqueue([after])
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(after.id)?["result"] == 5 })
    }
}
