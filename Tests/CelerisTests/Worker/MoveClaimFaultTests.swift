@testable import FastCore
import Foundation
import Logging
import XCTest

/// Claims by move under broker faults and hostile registry entries, against a real
/// redis-server: a refused record keeps its claiming list (no later move replaces it)
/// and is sent again; a refusal that is the server's state (out of memory) pauses claims
/// instead of switching to the script for good; a registry member of any shape neither
/// traps a recovering worker nor stops valid claims coming back; a claiming list's item
/// that is not JSON, or not UTF-8, goes back byte for byte.
final class MoveClaimFaultTests: RedisTestCase {
    private var spare = SpareBuffers()

    /// One claim sent and every part of it read, as the engine does in a turn.
    private func exchange(_ claim: MoveClaim, room: Int) throws -> [ClaimReply] {
        var parts: [ClaimInFlight] = []
        try claim.send(room: room, queues: ["celery"], now: CeleryTime.now(), on: client, into: &parts)
        var replies: [ClaimReply] = []
        for part in parts { replies.append(try claim.read(part, on: client, reusing: &spare)) }
        return replies
    }

    /// The tags the replies took.
    private func took(_ replies: [ClaimReply]) -> [String] {
        replies.flatMap { reply -> [String] in
            if case .took(let deliveries, _) = reply { return deliveries.map(\.tag) }
            return []
        }
    }

    /// The claim's records sent and their reply read, as the engine's next write does;
    /// false when there was nothing to record.
    private func record(_ claim: MoveClaim) throws -> Bool {
        var wire: [UInt8] = []
        guard let replies = claim.appendRecords(stamp: Leases.stamp(CeleryTime.now()), to: &wire) else { return false }
        try client.append(resp: wire)
        try client.flush()
        _ = try claim.read(.records(replies: replies), on: client, reusing: &spare)
        return true
    }

    private func outOfMemory(_ on: Bool) throws {
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory-policy", "noeviction").text, "OK")
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory", on ? "1" : "0").text, "OK")
    }

    /// Records of a claim by move refused (out of memory: EXECABORT) stay to be sent again,
    /// and the claiming list stays this claim's: the next claim does not move into it (it
    /// would replace the unrecorded messages, left only in the worker's memory). Before,
    /// the refusal was only logged and the next move's `SORT … STORE` overwrote the list.
    func testRefusedRecordsKeepTheClaimingListUntilRecorded() throws {
        let claim = MoveClaim(hostname: "w@test", logger: Logger(label: "test"))
        XCTAssertEqual(try claim.connected(on: client, held: { _ in false }), 0)
        let messages = (0..<5).map { TaskMessage(task: "add", args: [.int(Int64($0)), 1]) }
        try enqueue(messages)
        XCTAssertEqual(took(try exchange(claim, room: 1)).count, 1, "the script's (no lengths known yet)")
        XCTAssertEqual(took(try exchange(claim, room: 2)).count, 2, "by move")
        let claiming = ClaimByMove(hostname: "w@test").claimingKey("celery")
        XCTAssertEqual(try client.command("LLEN", claiming).integer, 2)
        try outOfMemory(true)
        XCTAssertTrue(try record(claim))
        XCTAssertEqual(try client.command("LLEN", claiming).integer, 2, "refused whole: the list is intact")
        XCTAssertTrue(claim.hasUnrecorded, "sent again")
        try outOfMemory(false)
        XCTAssertEqual(took(try exchange(claim, room: 2)).count, 2)
        XCTAssertEqual(try client.command("LLEN", claiming).integer, 2, "not replaced by a move")
        XCTAssertTrue(try record(claim))
        XCTAssertFalse(claim.hasUnrecorded)
        // Every message is recorded in kombu's bookkeeping; nothing is left queued or parked.
        let recorded = Set(try client.command("HKEYS", "unacked").elements?.compactMap(\.text) ?? [])
        XCTAssertEqual(recorded, Set(messages.map(\.deliveryTag)))
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 0)
        XCTAssertEqual(try client.keys("celeris.claiming*"), [])
    }

    /// A claim by move refused because Redis is out of memory (OOM, then EXECABORT) moved
    /// nothing: it is a pause (`.refused`), not a switch to the script for the rest of the
    /// run; once memory is back, claims move again. Before, `refused` stuck and the read threw.
    func testOutOfMemoryPausesClaimsByMoveInsteadOfSwitchingToTheScript() throws {
        let claim = MoveClaim(hostname: "w@test", logger: Logger(label: "test"))
        XCTAssertEqual(try claim.connected(on: client, held: { _ in false }), 0)
        let messages = (0..<4).map { TaskMessage(task: "add", args: [.int(Int64($0)), 1]) }
        try enqueue(messages)
        XCTAssertEqual(took(try exchange(claim, room: 1)).count, 1)
        try outOfMemory(true)
        let replies = try exchange(claim, room: 3)
        XCTAssertTrue(
            replies.contains { if case .refused(let m) = $0 { m.hasPrefix("OOM") } else { false } }, "\(replies)")
        XCTAssertFalse(claim.refused)
        XCTAssertFalse(claim.hasUnrecorded)
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 3, "nothing moved")
        try outOfMemory(false)
        XCTAssertEqual(took(try exchange(claim, room: 3)).count, 3)
        XCTAssertTrue(claim.hasUnrecorded, "claimed by move")
        XCTAssertTrue(try record(claim))
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 4)
        XCTAssertEqual(try client.keys("celeris.claiming*"), [])
    }

    /// Redis out of memory while a worker claiming by move drains a backlog: each task
    /// runs once, every result lands once memory is back, and nothing is left in `unacked`
    /// or a claiming list; the worker still claims by move.
    func testOutOfMemoryUnderAClaimByMoveWorkerLosesNothingAndRunsEachOnce() throws {
        let gate = DispatchSemaphore(value: 0)
        let runs = LockedBox<[String: Int]>([:])
        let worker = InProcessWorker(redis: redis, concurrency: 2, prefetch: 4, claimByMove: true) { r in
            r.register("count_run") { ctx in
                runs.modify { $0[ctx.argument(0, "i")?.serialized() ?? "", default: 0] += 1 }
                gate.wait()
                return ctx.argument(0, "i") ?? .null
            }
        }
        defer { for _ in 0..<64 { gate.signal() } }
        let messages = (0..<30).map { TaskMessage(task: "count_run", args: [.int(Int64($0))]) }
        try enqueue(messages)
        XCTAssertTrue(eventually { runs.get().count == 2 }, "\(worker.errors.get())")
        try outOfMemory(true)
        for _ in 0..<64 { gate.signal() }
        XCTAssertTrue(eventually { worker.consumer.writeFailures["oom", default: 0] >= 2 }, "\(worker.errors.get())")
        try outOfMemory(false)
        XCTAssertTrue(
            try eventually(timeout: 30) {
                try messages.allSatisfy { try self.result($0.id)?["status"] == "SUCCESS" }
                    && self.client.command("HLEN", "unacked").integer == 0
                    && self.client.command("ZCARD", "unacked_index").integer == 0
            }, "\(worker.errors.get())")
        worker.stop()
        XCTAssertEqual(runs.get().count, messages.count)
        XCTAssertEqual(runs.get().values.filter { $0 != 1 }, [], "each task ran once")
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 0)
        XCTAssertEqual(try client.keys("celeris.claiming*"), [])
        XCTAssertEqual((worker.consumer.pipeline.claim as? MoveClaim)?.refused, false)
    }

    /// Registry members anyone could write: a negative length, one near `Int.max`, one past
    /// `Int`, one longer than the key, and bytes that are not UTF-8. Recovery drops them
    /// from the registry and still restores a dead worker's valid claiming list. Before, the
    /// first two trapped the recovering worker (index out of range, overflow).
    func testCraftedRegistryMembersNeitherTrapNorBlockRecovery() throws {
        for bad in [
            "celeris.claiming:-100:x", "celeris.claiming:9223372036854775807:x",
            "celeris.claiming:99999999999999999999999:x", "celeris.claiming:50:x:celery",
        ] {
            XCTAssertEqual(ClaimByMove.sourceKey(ofClaimingKey: bad), nil, bad)
            try client.command("ZADD", ClaimByMove.registryKey, "0", bad)
        }
        try command([Array("ZADD".utf8), Array(ClaimByMove.registryKey.utf8), Array("0".utf8), [0xFF, 0x3A, 0xFE]])
        let m = TaskMessage(task: "add", args: [1, 2])
        try enqueue([m])
        let dead = ClaimByMove(hostname: "dead@test")
        let plan = [(key: "celery", count: 1)]
        try dead.append(plan, stamp: "1", on: client)
        XCTAssertEqual(try dead.deliveries(plan, on: client).map(\.tag), [m.deliveryTag])
        let outcome = try ClaimByMove.restoreStale(
            ceiling: CeleryTime.now(), on: client, redeliveries: RedeliveryLimit(worker: "live@test"),
            now: CeleryTime.now())
        XCTAssertEqual(outcome, DeliveryRestore.Outcome(restored: 1, deadLettered: 0))
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 1)
        XCTAssertEqual(try client.command("ZCARD", ClaimByMove.registryKey).integer, 0)
        // And a worker's own recovery pass over them keeps it running: it runs what came back.
        for bad in ["celeris.claiming:-100:x", "celeris.claiming:9223372036854775807:x"] {
            try client.command("ZADD", ClaimByMove.registryKey, "0", bad)
        }
        let worker = InProcessWorker(redis: redis, claimByMove: true)
        XCTAssertTrue(try eventually { try self.result(m.id)?["status"] == "SUCCESS" }, "\(worker.errors.get())")
        XCTAssertTrue(try eventually { try self.client.command("ZCARD", ClaimByMove.registryKey).integer == 0 })
        worker.stop()
    }

    /// A claiming list's item that is not JSON, or not UTF-8, carries no restore count: it
    /// goes back to its queue byte for byte (before, `String(decoding:)` replaced the
    /// invalid bytes with U+FFFD), with the envelope beside it (counted).
    func testNonJSONAndNonUTF8ItemsAreRestoredByteExact() throws {
        let dead = ClaimByMove(hostname: "dead@test")
        let claiming = dead.claimingKey("celery")
        let m = TaskMessage(task: "add", args: [1, 2])
        let items: [[UInt8]] = [[0xFF, 0xFE, 0x7B, 0x22, 0x80], Array(m.envelope().utf8), Array("not json".utf8)]
        for item in items { try command([Array("RPUSH".utf8), Array(claiming.utf8), item]) }
        try client.command("ZADD", ClaimByMove.registryKey, "1", claiming)
        let outcome = try ClaimByMove.restoreStale(
            ceiling: CeleryTime.now(), on: client, redeliveries: RedeliveryLimit(worker: "live@test"),
            now: CeleryTime.now())
        XCTAssertEqual(outcome, DeliveryRestore.Outcome(restored: 3, deadLettered: 0))
        let back = try client.command("LRANGE", "celery", "0", "-1").elements?.compactMap(\.bytes) ?? []
        XCTAssertEqual(back.count, 3)
        XCTAssertEqual(back.filter { $0 == items[0] || $0 == items[2] }.count, 2, "\(back)")
        let envelope = try JSONParser.parse(try XCTUnwrap(back.first { $0 != items[0] && $0 != items[2] }))
        XCTAssertEqual(envelope["properties"]?[RedeliveryLimit.countKey], 1)
        XCTAssertEqual(try client.keys("celeris.claiming*"), [])
    }

    /// A command whose arguments are bytes (not necessarily UTF-8).
    @discardableResult
    private func command(_ args: [[UInt8]]) throws -> RedisValue {
        var wire: [UInt8] = []
        RESP.appendCount(args.count, to: &wire)
        for a in args { RESP.appendBulk(a, to: &wire) }
        try client.append(resp: wire)
        try client.flush()
        let reply = try client.read()
        XCTAssertNil(reply.errorMessage)
        return reply
    }
}
