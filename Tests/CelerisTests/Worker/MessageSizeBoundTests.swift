@testable import FastCore
import Foundation
import Logging
import XCTest

/// Size bounds in the worker: a message larger than `--max-message-bytes` is
/// dead-lettered with the reason and never decoded; one claim takes at most
/// `--max-claim-bytes` (always at least one message), the rest staying queued in order.
final class MessageSizeBoundTests: RedisTestCase {
    /// A message of about `bytes` bytes.
    func message(bytes: Int, _ n: Int = 0) -> TaskMessage {
        TaskMessage(task: "add", args: [.string(String(repeating: "x", count: bytes)), .int(Int64(n))])
    }

    /// A 200 KiB message against a 64 KiB bound: dead-lettered unread (no result, no
    /// TypeError from running `add` on it), acknowledged; the small one behind it runs.
    func testOversizedMessageIsDeadLetteredUnreadAndTheNextRuns() throws {
        let big = message(bytes: 200 * 1024)
        let small = TaskMessage(task: "add", args: [2, 3])
        try enqueue([big, small])
        let worker = InProcessWorker(redis: redis, configure: { $0.maxMessageBytes = 64 * 1024 })
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(small.id)?["status"] == "SUCCESS" })
        XCTAssertTrue(try eventually(timeout: 10) { try self.client.command("EXISTS", "unacked").integer == 0 })
        worker.stop()
        XCTAssertEqual(try client.command("LLEN", "celeris.dead_letter").integer, 1)
        let entry = try JSONParser.parse(try XCTUnwrap(try client.command("LINDEX", "celeris.dead_letter", "0").bytes))
        let reason = try XCTUnwrap(entry["reason"]?.stringValue)
        XCTAssertTrue(reason.contains("larger than the worker's limit of 65536 bytes"), reason)
        XCTAssertTrue(reason.contains("not decoded"), reason)
        XCTAssertEqual(entry["delivery_tag"], .string(big.deliveryTag))
        XCTAssertNil(try result(big.id), "never run")
        XCTAssertEqual(
            try client.keys(),
            [
                ResultRecord.key(small.id), "celeris.dead_letter", "_kombu.binding.celery",
                "_kombu.binding_permanent.celery",
            ])
    }

    /// Ten messages of one size against a claim bound of three and a half of them: the
    /// claim takes four (the fourth crosses the bound), the six others stay queued in
    /// their order, and the next claim goes on from there. A message larger than the
    /// bound alone is still taken.
    func testClaimStopsAtItsByteBoundAndLeavesTheRestInOrder() throws {
        let messages = (0..<10).map { message(bytes: 3000, $0) }
        let size = messages[0].envelope().utf8.count
        XCTAssertEqual(Set(messages.map { $0.envelope().utf8.count }), [size])
        try enqueue(messages)
        let claim = DeliveryClaim(claimBytes: size * 7 / 2)
        XCTAssertEqual(
            try claim.claim(on: client, queues: ["celery"], max: 100).map(\.tag), messages[..<4].map(\.deliveryTag))
        let queued = try client.command("LRANGE", "celery", "0", "-1").elements?.compactMap(\.bytes) ?? []
        XCTAssertEqual(try queued.reversed().map { try TaskMessage.decode($0).id }, messages[4...].map(\.id))
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 4)
        XCTAssertEqual(
            try claim.claim(on: client, queues: ["celery"], max: 100).map(\.tag), messages[4..<8].map(\.deliveryTag))
        let huge = message(bytes: 50_000)
        try enqueue([huge])
        XCTAssertEqual(
            try DeliveryClaim(claimBytes: 1_000).claim(on: client, queues: ["celery"], max: 100).map(\.tag),
            [messages[8].deliveryTag])
        XCTAssertEqual(
            try DeliveryClaim(claimBytes: 1_000).claim(on: client, queues: ["celery"], max: 100).map(\.tag),
            [messages[9].deliveryTag])
        XCTAssertEqual(
            try DeliveryClaim(claimBytes: 1_000).claim(on: client, queues: ["celery"], max: 100).map(\.tag),
            [huge.deliveryTag],
            "one message over the bound is still claimed (and dead-lettered by the worker if too large)")
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 11)
        XCTAssertEqual(try client.command("EXISTS", "celery").integer, 0)
    }

    /// A worker with a claim bound of one message's size drains a backlog of 2 KB messages
    /// with either claim (CELERIS_CLAIM): every task runs once and nothing is left over.
    func testWorkerWithASmallClaimBoundDrainsEverything() throws {
        let messages = (0..<60).map {
            TaskMessage(task: "add", args: [.string(String(repeating: "y", count: 2000)), .int(Int64($0))])
        }
        try enqueue(messages)
        let worker = InProcessWorker(redis: redis, prefetch: 16, configure: { $0.maxClaimBytes = 2500 })
        XCTAssertTrue(try eventually(timeout: 30) { try self.client.resultCount() == 60 })
        XCTAssertTrue(try eventually(timeout: 10) { try self.client.command("EXISTS", "unacked").integer == 0 })
        worker.stop()
        XCTAssertEqual(try client.command("EXISTS", "celery", "celeris.dead_letter").integer, 0)
    }

    /// A claim by move cannot see sizes before it moves: it moves as many as the bound
    /// holds of the largest message the last claim took. With a bound of three messages,
    /// the first claim (the script's: no lengths known yet) stops at three, and the claim
    /// by move after it plans three, not the twenty it has room for.
    func testClaimByMoveSizesItsBatchFromTheLargestMessageSeen() throws {
        let messages = (0..<40).map { message(bytes: 2000, $0) }
        let size = messages[0].envelope().utf8.count
        try enqueue(messages)
        let claim = MoveClaim(hostname: "m@test", logger: Logger(label: "test"), claimBytes: size * 3)
        var spare = SpareBuffers()
        XCTAssertEqual(try claim.connected(on: client, held: { _ in false }), 0, "loads the claim script")
        func claimOnce() throws -> (parts: [ClaimInFlight], took: [Delivery]) {
            var inFlight: [ClaimInFlight] = []
            try claim.send(room: 20, queues: ["celery"], now: CeleryTime.now(), on: client, into: &inFlight)
            var took: [Delivery] = []
            for part in inFlight {
                if case .took(let d, _) = try claim.read(part, on: client, reusing: &spare) { took += d }
            }
            return (inFlight, took)
        }
        let first = try claimOnce()
        XCTAssertEqual(first.took.map(\.tag), messages[..<3].map(\.deliveryTag), "the script stops at the bound")
        let second = try claimOnce()
        let planned = second.parts.compactMap { part -> Int? in
            guard case .move(let plan) = part else { return nil }
            return plan.reduce(0) { $0 + $1.count }
        }
        XCTAssertEqual(planned, [3], "one claim by move, of three")
        XCTAssertEqual(second.took.map(\.tag), messages[3..<6].map(\.deliveryTag))
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 34)
    }

    /// A claim its byte bound stopped short of what it asked for does not tell the
    /// fetcher the queues are drained (it would wait for a waker or the idle poll before
    /// claiming again); a claim that found the queue empty still does.
    func testAClaimCutByItsByteBoundDoesNotCallTheQueuesDrained() throws {
        let messages = (0..<5).map { message(bytes: 3000, $0) }
        let size = messages[0].envelope().utf8.count
        try enqueue(messages)
        let claim = ScriptClaim(hostname: "s@test", claimBytes: size * 2)
        XCTAssertEqual(try claim.connected(on: client, held: { _ in false }), 0, "loads the claim script")
        var spare = SpareBuffers()
        var fetcher = Fetcher(queues: ["celery"], maxIdle: 0.02)
        func claimOnce() throws {
            var inFlight: [ClaimInFlight] = []
            try claim.send(room: 8, queues: ["celery"], now: 0, on: client, into: &inFlight)
            for part in inFlight { fetcher.apply(try claim.read(part, on: client, reusing: &spare), now: 0) }
        }
        try claimOnce()
        XCTAssertEqual(fetcher.claimedAhead.map(\.tag), messages[..<2].map(\.deliveryTag))
        XCTAssertFalse(fetcher.queuesLookEmpty, "cut by its bound, not drained")
        try claimOnce()
        try claimOnce()
        XCTAssertEqual(fetcher.claimedAhead.map(\.tag), messages.map(\.deliveryTag))
        XCTAssertTrue(fetcher.queuesLookEmpty, "the last claim took one of the eight it asked for")
    }
}
