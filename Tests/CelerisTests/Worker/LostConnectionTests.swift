import FastCore
import Foundation
import XCTest

/// A dropped connection loses nothing: writes in flight are sent again, and what a claim
/// in flight took goes back to its queues at once (its receipt says what).
final class LostConnectionTests: RedisTestCase {
    /// A claim with a serial writes its receipt (the serial, then its tags); a claim that
    /// takes nothing leaves the last one; another serial reads as nothing taken.
    func testClaimWritesAReceiptOfWhatItTook() throws {
        let key = DeliveryClaim.receiptKey(hostname: "w1@test")
        let claim = DeliveryClaim(receiptKey: key)
        let ms = (0..<3).map { TaskMessage(task: "add", args: [.int(Int64($0)), 1]) }
        try enqueue(ms)
        let took = try claim.claim(on: client, queues: ["celery"], max: 10, serial: "41")
        XCTAssertEqual(took.map(\.tag), ms.map(\.deliveryTag))
        XCTAssertEqual(try client.command("GET", key).text, (["41"] + ms.map(\.deliveryTag)).joined(separator: "\n"))
        XCTAssertEqual(try client.command("TYPE", key).text, "string", "the receipt is not read as a queue")
        XCTAssertGreaterThan(try client.command("TTL", key).integer ?? 0, 0)
        XCTAssertEqual(try claim.receipt(of: "41", on: client), ms.map(\.deliveryTag))
        XCTAssertEqual(try claim.claim(on: client, queues: ["celery"], max: 10, serial: "42").count, 0)
        XCTAssertEqual(try claim.receipt(of: "42", on: client), [], "took nothing: no receipt of its own")
        XCTAssertEqual(try claim.receipt(of: "41", on: client), ms.map(\.deliveryTag))
        // A claim without a receipt key writes none.
        try enqueue([TaskMessage(task: "add", args: [1, 1])])
        XCTAssertEqual(try DeliveryClaim().claim(on: client, queues: ["celery"], max: 10, serial: "43").count, 1)
        XCTAssertEqual(try claim.receipt(of: "41", on: client), ms.map(\.deliveryTag))
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 4)
    }

    /// The worker's connections are killed over and over while it drains: every task
    /// still ends with its own result and its ack, and nothing stays held.
    func testConnectionsKilledMidDrainLoseNoResult() throws {
        let worker = try CelerisProcess.worker(redis: redis, extra: ["--prefetch-multiplier", "16"])
        let messages = (0..<10_000).map { TaskMessage(task: "noop", args: [.int(Int64($0))]) }
        try enqueue(messages)
        let me = try XCTUnwrap(try client.command("CLIENT", "ID").integer)
        let connectionsBefore = try XCTUnwrap(try client.info("stats", "total_connections_received"))
        var kills = 0
        while try client.command("LLEN", "celery").integer ?? 0 > 0 && kills < 200 {
            Thread.sleep(forTimeInterval: 0.03)
            let list = try client.command("CLIENT", "LIST", "TYPE", "normal").text ?? ""
            for line in list.split(separator: "\n") {
                guard let field = line.split(separator: " ").first(where: { $0.hasPrefix("id=") }),
                    let id = Int64(field.dropFirst(3)), id != me
                else { continue }
                _ = try client.command("CLIENT", "KILL", "ID", String(id))
                kills += 1
            }
        }
        XCTAssertGreaterThan(kills, 2, "the drain outran the kills")
        XCTAssertTrue(
            try eventually(timeout: 60, interval: 0.1) {
                try self.client.resultCount() == 10_000
            }, worker.log)
        XCTAssertTrue(
            try eventually(timeout: 10) {
                try self.client.command("HLEN", "unacked").integer == 0
                    && self.client.command("ZCARD", "unacked_index").integer == 0
            }, worker.log)
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 0)
        for m in messages.filter({ $0.args[0].intValue! % 97 == 0 }) {
            XCTAssertEqual(try result(m.id)?["result"], m.args[0])
        }
        XCTAssertTrue(worker.isRunning)
        // It drained through the kills by connecting again: more connections than before,
        // and (once its reconnect pause after the last kill is over) it holds live ones.
        let connectionsAfter = try XCTUnwrap(try client.info("stats", "total_connections_received"))
        XCTAssertGreaterThan(connectionsAfter - connectionsBefore, 2, "the worker reconnected")
        XCTAssertTrue(
            try eventually(timeout: 10, interval: 0.1) {
                (try self.client.command("CLIENT", "LIST", "TYPE", "normal").text ?? "").split(separator: "\n")
                    .contains { !$0.hasPrefix("id=\(me) ") }
            }, "the worker is connected")
    }
}
