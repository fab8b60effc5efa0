import Foundation
import XCTest

@testable import FastCore

/// The worker reuses finished tasks' runners, messages, envelope buffers and tags for
/// the next deliveries: reuse must never change a copy held elsewhere, and every task
/// must see its own message.
final class RecyclingTests: RedisTestCase {
    /// Where a string's UTF-8 lives (its storage, for one that is not small).
    private func address(_ s: inout String) -> UnsafeRawPointer? { s.withUTF8 { UnsafeRawPointer($0.baseAddress) } }

    private func assign(_ s: inout String, _ text: String) {
        Array(text.utf8).withUnsafeBufferPointer { s.assign(utf8: $0) }
    }

    func testAssignWritesOverItsOwnStorageAndNeverOverACopy() {
        let (a, b, c) = (TaskMessage.newId(), TaskMessage.newId(), TaskMessage.newId())
        var s = String(decoding: Array(a.utf8), as: UTF8.self)
        let before = address(&s)
        assign(&s, b)
        XCTAssertEqual(s, b)
        XCTAssertEqual(address(&s), before, "same length, ASCII, unshared: written in place")
        XCTAssertEqual(Set([s]).contains(b), true, "hashes as the new text")

        let kept = s
        assign(&s, c)
        XCTAssertEqual(s, c)
        XCTAssertEqual(kept, b, "a copy held elsewhere keeps its text")
        XCTAssertNotEqual(address(&s), before, "shared storage is copied first")

        // Every other shape gets a new string with the right text.
        for text in ["short", "", String(repeating: "x", count: 37), "caf\u{e9}-" + String(c.dropFirst(6)), c] {
            var t = String(decoding: Array(a.utf8), as: UTF8.self)
            assign(&t, text)
            XCTAssertEqual(t, text)
        }
        var nonASCII = "caf\u{e9}-" + String(a.dropFirst(6))
        assign(&nonASCII, b)
        XCTAssertEqual(nonASCII, b)

        // A literal's storage is read-only program memory: copied, never written.
        var literal = "0123456789abcdef0123456789abcdef0123"
        assign(&literal, a)
        XCTAssertEqual(literal, a)
        XCTAssertEqual("0123456789abcdef0123456789abcdef0123".utf8.count, 36)
    }

    /// A message decoded into another's storage: a copy taken before is unchanged, and
    /// the decoded one equals a fresh decode field for field.
    func testDecodeIntoAFinishedMessageKeepsCopiesAndReadsEveryField() throws {
        var first = TaskMessage(task: "add", args: [1, 2])
        first.eta = "2026-11-22T10:00:00+00:00"
        first.group = "g1"
        var second = TaskMessage(task: "a.much.longer.task.name", args: ["x", [1, 2], 3.5], kwargs: [("k", 1)])
        second.parentId = TaskMessage.newId()
        second.rootId = TaskMessage.newId()
        let third = TaskMessage(task: "add", args: [7, 8], id: "custom-id-of-another-length")
        let envelopes = [first, second, third, first].map { Array($0.envelope().utf8) }

        var m = try TaskMessage.decode(envelopes[0], queue: "q", deliveryTag: "tag-0")
        let kept = m
        for (i, raw) in envelopes.enumerated().dropFirst() {
            let tag = "tag-\(i)"
            try m.decode(raw, queue: "q", deliveryTag: tag)
            let fresh = try TaskMessage.decode(raw, queue: "q", deliveryTag: tag)
            XCTAssertEqual(m.id, fresh.id)
            XCTAssertEqual(m.task, fresh.task)
            XCTAssertEqual(m.args, fresh.args)
            XCTAssertEqual(m.kwargs.map(\.key), fresh.kwargs.map(\.key))
            XCTAssertEqual(m.kwargs.map(\.value), fresh.kwargs.map(\.value))
            XCTAssertEqual(m.embed, fresh.embed)
            XCTAssertEqual(m.eta, fresh.eta)
            XCTAssertEqual(m.group, fresh.group)
            XCTAssertEqual(m.rootId, fresh.rootId)
            XCTAssertEqual(m.parentId, fresh.parentId)
            XCTAssertEqual(m.origin, fresh.origin)
            XCTAssertEqual(m.replyTo, fresh.replyTo)
            XCTAssertEqual(m.headers, fresh.headers)
            XCTAssertEqual(m.deliveryTag, tag)
            XCTAssertEqual(m.received, raw)
        }
        XCTAssertEqual(kept.id, first.id, "the copy taken before is untouched")
        XCTAssertEqual(kept.args, [1, 2])
        XCTAssertEqual(kept.deliveryTag, "tag-0")
        XCTAssertEqual(kept.eta, first.eta)
        XCTAssertEqual(m.rootId, m.id, "root_id that is the id shares it")

        // Unshared now: the id and the argument array are written over in place.
        try m.decode(Array(TaskMessage(task: "add", args: [3, 4]).envelope().utf8), queue: "q", deliveryTag: "t")
        var id = m.id
        let idAt = address(&id)
        let argsAt = m.args.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
        id = ""
        let next = TaskMessage(task: "add", args: [5, 6])
        try m.decode(Array(next.envelope().utf8), queue: "q", deliveryTag: "t")
        var nextId = m.id
        XCTAssertEqual(nextId, next.id)
        XCTAssertEqual(address(&nextId), idAt)
        XCTAssertEqual(m.args.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }, argsAt)
        XCTAssertEqual(m.args, [5, 6])

        // A refused envelope throws; the message then takes the next one whole.
        XCTAssertThrowsError(try m.decode(Array(#"{"headers": {}}"#.utf8), queue: "q", deliveryTag: "t"))
        try m.decode(envelopes[1], queue: "q", deliveryTag: "t2")
        XCTAssertEqual(m.id, second.id)
        XCTAssertEqual(m.task, second.task)
        XCTAssertEqual(m.args, second.args)
    }

    /// A claim copies messages into spare envelope buffers and tags into spare tags
    /// (whatever they held, shared or not) while it has any, fresh ones after.
    func testClaimReusesSpareEnvelopesAndTags() throws {
        let claim = DeliveryClaim()
        XCTAssertEqual(try claim.claim(on: client, queues: ["celery"], max: 5).count, 0, "loads the script")
        let ms = (0..<3).map { TaskMessage(task: "add", args: [.int(Int64($0)), 1]) }
        try enqueue(ms)
        var spare = SpareBuffers()
        spare.keep(envelope: Array(repeating: UInt8(ascii: "x"), count: 4000))
        spare.keep(envelope: Array("stale".utf8))
        let held = TaskMessage.newId()  // still held here: copied, not written over
        spare.keep(tag: held)
        spare.keep(tag: "short")
        let pending = try XCTUnwrap(try claim.start(on: client, queues: ["celery"], max: 5))
        let took = try XCTUnwrap(try claim.finish(pending, on: client, reusing: &spare))
        XCTAssertEqual(spare.envelopes.count, 0, "both spare buffers used")
        XCTAssertEqual(spare.tags.count, 0, "both spare tags used")
        XCTAssertEqual(took.map(\.tag), ms.map(\.deliveryTag))
        XCTAssertEqual(took.map(\.raw), ms.map { Array($0.envelope().utf8) })
        XCTAssertGreaterThanOrEqual(took[1].raw.capacity, 4000, "spares are taken from the end: the second message's")
        XCTAssertEqual(held.utf8.count, 36)
        XCTAssertFalse(took.contains { $0.tag == held })
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 3)
    }

    /// A worker with a small prefetch window recycles its runners many times over:
    /// every task still gets its own result, whatever the lengths of its id and
    /// arguments, with a poison message and an unregistered task in between.
    func testRecycledRunnersGiveEveryTaskItsOwnResult() throws {
        let worker = try CelerisProcess.worker(redis: redis, extra: ["--prefetch-multiplier", "2", "-c", "2"])
        var messages: [TaskMessage] = []
        for i in 0..<600 {
            let arg: JSON =
                switch i % 4 {
                case 0: .int(Int64(i))
                case 1: .string(String(repeating: "a", count: i % 50))
                case 2: .string("t\u{e2}che-\(i)")
                default: [.int(Int64(i)), .string("\(i)")]
                }
            let id = i % 3 == 0 ? "id-\(i)" : i % 3 == 1 ? TaskMessage.newId() : "t\u{e2}che-\(TaskMessage.newId())"
            messages.append(TaskMessage(task: "noop", args: [arg], id: id))
        }
        let unregistered = TaskMessage(task: "no.such.task")
        try enqueue(Array(messages[..<300]))
        try client.command("LPUSH", "celery", "{not json")
        try enqueue([unregistered] + messages[300...])
        XCTAssertTrue(
            try eventually(timeout: 60, interval: 0.1) {
                try self.client.resultCount() == 601
                    && self.client.command("LLEN", "celeris.dead_letter").integer == 1
            }, worker.log)
        // Each result was stored with its ack, in one transaction: nothing is left held.
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 0)
        for m in messages {
            let r = try XCTUnwrap(try result(m.id), "no result for \(m.id)")
            XCTAssertEqual(r["status"], "SUCCESS")
            XCTAssertEqual(r["task_id"]?.stringValue, m.id)
            XCTAssertEqual(r["result"], m.args[0], "task \(m.id)")
        }
        XCTAssertEqual(try result(unregistered.id)?["status"], "FAILURE")
        XCTAssertEqual(try client.command("LINDEX", "celeris.dead_letter", "0").text?.contains("{not json"), true)
    }
}
