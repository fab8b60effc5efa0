import FastCore
import Foundation
import XCTest

/// The safety net for a message that kills whoever runs it: each time a worker dies
/// holding a delivery and a live worker restores it, the restore is counted in the
/// message; past `--max-redeliveries` the delivery goes to the dead-letter list with
/// the reason instead of back to its queue. The dying workers are claims nobody
/// acknowledges (by script, and by move); the live worker's `ManualClock` moves past
/// the visibility timeout so its recovery pass restores them.
final class RedeliveryLimitTests: RedisTestCase {
    let visibilityTimeout = 4.0

    /// A live worker that consumes another queue: only its recovery touches `celery`.
    func recoveringWorker(clock: ManualClock, maxRedeliveries: Int = RedeliveryLimit.defaultMax) -> InProcessWorker {
        InProcessWorker(
            redis: redis, queues: ["idle"], clock: clock, visibilityTimeout: visibilityTimeout, hostname: "live@test",
            configure: { $0.maxRedeliveries = maxRedeliveries })
    }

    /// Past the visibility timeout and the next recovery pass, on the live worker's clock.
    func letLeasesGoStale(_ clock: ManualClock) { clock.advance(visibilityTimeout * 2) }

    /// The message queued on `celery`, with the count its restores wrote.
    func queued() throws -> JSON {
        let items = try client.command("LRANGE", "celery", "0", "-1").elements?.compactMap(\.bytes) ?? []
        XCTAssertEqual(items.count, 1)
        return try JSONParser.parse(items.first ?? [])
    }

    func assertDeadLettered(_ m: TaskMessage, keysBefore: Set<String>) throws {
        XCTAssertEqual(try client.command("LLEN", "celeris.dead_letter").integer, 1)
        let raw = try XCTUnwrap(try client.command("LINDEX", "celeris.dead_letter", "0").bytes)
        let entry = try JSONParser.parse(raw)
        let reason = try XCTUnwrap(entry["reason"]?.stringValue)
        // True whoever held it: a dead worker, or one (Python's) that never renews its leases.
        XCTAssertTrue(reason.hasPrefix("restored 5 times after its lease expired, and its lease expired again"), reason)
        XCTAssertTrue(reason.contains("held it past the visibility timeout"), reason)
        XCTAssertTrue(reason.contains("after 5 redeliveries (--max-redeliveries)"), reason)
        XCTAssertEqual(entry["delivery_tag"], .string(m.deliveryTag))
        XCTAssertEqual(entry["queue"], "celery")
        XCTAssertEqual(entry["worker"], "live@test")
        let message = try XCTUnwrap(entry["message"]?.stringValue)
        XCTAssertEqual(try TaskMessage.decode(Array(message.utf8)).id, m.id)
        // Nothing queued, leased, claimed or counted elsewhere: only the dead letter is new.
        XCTAssertEqual(try client.keys(), keysBefore.subtracting(["celery"]).union(["celeris.dead_letter"]))
    }

    /// `m` queued and a live worker recovering it on its clock; six times a worker claims
    /// `m` (`dieClaiming(m, n)`) and dies: the live worker restores it five times (each
    /// checked by `checkRestored(n)` once it is back on `celery`), then dead-letters it.
    private func assertDeadLetteredAfterSixDeaths(
        dieClaiming: (TaskMessage, Int) throws -> Void, checkRestored: (Int) throws -> Void
    ) throws {
        let m = TaskMessage(task: "add", args: [1, 2])
        try enqueue([m])
        let clock = ManualClock(CeleryTime.now())
        let worker = recoveringWorker(clock: clock)
        XCTAssertTrue(try eventually(timeout: 10) { try self.client.keys().contains("_kombu.binding.idle") })
        let keysBefore = try client.keys()
        for restores in 1...5 {
            try dieClaiming(m, restores)
            letLeasesGoStale(clock)
            XCTAssertTrue(try eventually(timeout: 10) { try self.client.command("LLEN", "celery").integer == 1 })
            try checkRestored(restores)
        }
        try dieClaiming(m, 6)
        letLeasesGoStale(clock)
        XCTAssertTrue(
            try eventually(timeout: 10) { try self.client.command("EXISTS", "celeris.dead_letter").integer == 1 })
        worker.stop()
        try assertDeadLettered(m, keysBefore: keysBefore)
    }

    /// Claimed by the script six times by workers that died: restored five times (each
    /// restore counted in the envelope, marked redelivered), then dead-lettered.
    func testScriptClaimedDeliveryIsDeadLetteredAfterMaxRedeliveries() throws {
        try assertDeadLetteredAfterSixDeaths(
            dieClaiming: { m, _ in
                XCTAssertEqual(
                    try DeliveryClaim().claim(on: self.client, queues: ["celery"], max: 1).map(\.tag), [m.deliveryTag])
            },
            checkRestored: { restores in
                let back = try self.queued()
                XCTAssertEqual(back["properties"]?[RedeliveryLimit.countKey], .int(Int64(restores)))
                XCTAssertEqual(back["headers"]?["redelivered"], true)
                XCTAssertEqual(back["properties"]?["delivery_info"]?["redelivered"], true)
                XCTAssertEqual(try self.client.command("EXISTS", "unacked", "unacked_index").integer, 0)
            })
    }

    /// The same by move: each dying worker moved the message into its claiming list and
    /// died before recording it; the live worker restores the list, counted, and the
    /// sixth time dead-letters the message and unregisters the list.
    func testMoveClaimedDeliveryIsDeadLetteredAfterMaxRedeliveries() throws {
        try assertDeadLetteredAfterSixDeaths(
            dieClaiming: { m, n in
                let dead = ClaimByMove(hostname: "dead-\(n)@test")
                let plan = [(key: "celery", count: 1)]
                try dead.append(plan, stamp: String(Int(CeleryTime.now()) + 1), on: self.client)
                XCTAssertEqual(try dead.deliveries(plan, on: self.client).map(\.tag), [m.deliveryTag])
                XCTAssertEqual(try self.client.command("LLEN", dead.claimingKey("celery")).integer, 1)
            },
            checkRestored: { restores in
                XCTAssertEqual(try self.queued()["properties"]?[RedeliveryLimit.countKey], .int(Int64(restores)))
                XCTAssertEqual(try self.client.command("EXISTS", ClaimByMove.registryKey).integer, 0)
            })
    }

    /// A worker restarted after dying on a message it had claimed by move takes its
    /// claiming list back at connect: counted too, so a crash loop under a supervisor
    /// (same name, no visibility timeout to wait) also ends in the dead-letter list.
    func testRestartedMoveWorkerDeadLettersItsOwnClaimWhoseRedeliveriesRanOut() throws {
        var m = TaskMessage(task: "add", args: [1, 2])
        m.deliveryTag = "crashes-its-worker"
        let envelope = try JSONParser.parse(m.envelope())
        let properties = try XCTUnwrap(envelope["properties"])
        let exhausted = envelope.setting("properties", properties.setting(RedeliveryLimit.countKey, 5))
        let own = ClaimByMove(hostname: "celeris@test").claimingKey("celery")
        try client.command("RPUSH", own, exhausted.serialized())
        try client.command("ZADD", ClaimByMove.registryKey, String(Int(CeleryTime.now())), own)
        let worker = InProcessWorker(redis: redis, claimByMove: true)
        XCTAssertTrue(
            try eventually(timeout: 10) { try self.client.command("EXISTS", "celeris.dead_letter").integer == 1 })
        worker.stop()
        let entry = try JSONParser.parse(try XCTUnwrap(try client.command("LINDEX", "celeris.dead_letter", "0").bytes))
        XCTAssertEqual(entry["delivery_tag"], "crashes-its-worker")
        XCTAssertEqual(entry["worker"], "celeris@test")
        XCTAssertEqual(try client.keys(), ["celeris.dead_letter", "_kombu.binding.celery"])
        XCTAssertNil(try result(m.id), "not run")
    }

    /// The dead-letter entry's `message` is the envelope's text as it was claimed, byte
    /// for byte (here with a Python-style space no serializer of ours writes), not the
    /// envelope parsed and written again.
    func testDeadLetterEntryHoldsTheEnvelopeAsClaimed() throws {
        let m = TaskMessage(task: "add", args: [1, 2])
        let compact = Array(m.envelope().utf8)
        XCTAssertEqual(compact.first, UInt8(ascii: "{"))
        let spaced = [UInt8(ascii: "{"), UInt8(ascii: " ")] + compact.dropFirst()
        try client.command("LPUSH", "celery", String(decoding: spaced, as: UTF8.self))
        XCTAssertEqual(try DeliveryClaim().claim(on: client, queues: ["celery"], max: 1).count, 1)
        let outcome = try DeliveryRestore().recover(
            on: client, visibilityTimeout: 10, now: CeleryTime.now() + 20,
            redeliveries: RedeliveryLimit(max: 0, worker: "w@test"))
        XCTAssertEqual(outcome, DeliveryRestore.Outcome(restored: 0, deadLettered: 1))
        let entry = try JSONParser.parse(try XCTUnwrap(try client.command("LINDEX", "celeris.dead_letter", "0").bytes))
        XCTAssertEqual(entry["message"]?.stringValue, String(decoding: spaced, as: UTF8.self))
    }

    /// A delivery given back (a warm stop's unstarted ones, a lost claim's) is not counted,
    /// and a negative limit keeps Celery's behaviour: restored however often.
    func testGivenBackDeliveriesAreNotCountedAndANegativeLimitNeverDeadLetters() throws {
        let m = TaskMessage(task: "add", args: [1, 2])
        try enqueue([m])
        XCTAssertEqual(try DeliveryClaim().claim(on: client, queues: ["celery"], max: 1).count, 1)
        XCTAssertEqual(try DeliveryRestore().returnDeliveries([m.deliveryTag], on: client), 1)
        XCTAssertNil(try queued()["properties"]?[RedeliveryLimit.countKey])
        let unlimited = RedeliveryLimit(max: -1, worker: "w@test")
        for restores in 1...8 {
            XCTAssertEqual(try DeliveryClaim().claim(on: client, queues: ["celery"], max: 1).count, 1)
            let outcome = try DeliveryRestore().recover(
                on: client, visibilityTimeout: 10, now: CeleryTime.now() + 20, redeliveries: unlimited)
            XCTAssertEqual(outcome, DeliveryRestore.Outcome(restored: 1, deadLettered: 0))
            XCTAssertEqual(try queued()["properties"]?[RedeliveryLimit.countKey], .int(Int64(restores)))
        }
        XCTAssertEqual(try client.command("EXISTS", "celeris.dead_letter").integer, 0)
    }
}
