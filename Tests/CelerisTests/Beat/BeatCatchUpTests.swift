import FastCore
import Foundation
import XCTest

/// The per-entry `catch_up` policy after a 5 s outage of every scheduler: an entry with
/// `catch_up: once` sends one message for all the due times it missed, one with `skip` sends
/// none; both then go on sending each due time once.
final class BeatCatchUpTests: RedisTestCase {
    let expiresSeconds = 3600.0
    let scheduleText = #"""
        {"beat_schedule": {
          "once": {"task": "add", "schedule": 1, "args": [1, 1], "options": {"queue": "beat.once", "expires": 3600},
                   "catch_up": "once"},
          "skip": {"task": "add", "schedule": 1, "args": [2, 2], "options": {"queue": "beat.skip", "expires": 3600},
                   "catch_up": "skip"}}}
        """#

    /// An entry's state: its `count`, its last handled `due` time, and its messages (oldest first).
    struct EntryState {
        var count: Int64
        var due: Int64
        var messages: [SentBeatMessage]
    }

    func state(_ name: String) throws -> EntryState {
        EntryState(
            count: try XCTUnwrap(try client.beatEntryField(name, "count"), name),
            due: try XCTUnwrap(try client.beatEntryField(name, "due"), name),
            messages: try client.beatMessages(queue: "beat.\(name)"))
    }

    /// The latest time on `due`'s 1 s grid at or before `ms`.
    func gridPoint(of due: Int64, atOrBefore ms: Int64) -> Int64 {
        due + ((ms - due) - ((ms - due) % 1000 + 1000) % 1000)
    }

    func testOnceSendsOneMessageForTheOutageAndSkipNone() throws {
        let file = try BeatProcess.scheduleFile(scheduleText, removedAfter: self)
        let first = try BeatProcess(redis: redis, schedule: file, name: "first@catchup")
        XCTAssertTrue(
            try eventually(timeout: 15) {
                try (client.beatEntryField("once", "count") ?? 0) >= 2
                    && (client.beatEntryField("skip", "count") ?? 0) >= 2
            })
        first.terminate()
        XCTAssertEqual(first.exitStatus(), 0, first.log)
        let stoppedMs = try client.redisMillis()
        XCTAssertNil(try client.beatLeader(), "the lease was released")
        XCTAssertEqual(try client.beatSchedulers(), [], "no scheduler is up")
        let before = ["once": try state("once"), "skip": try state("skip")]
        for (name, s) in before { XCTAssertEqual(Int64(s.messages.count), s.count, name) }

        // The outage is the scenario itself: no scheduler runs for 5 s of Redis's clock (TIME, the
        // clock due times are on).
        Thread.sleep(forTimeInterval: max(0, Double(stoppedMs + 5000 - (try client.redisMillis())) / 1000))
        // Watches started before the restart see its first turn: both policies record the latest
        // due time missed in the entry's `due` there (`once` with its one send, `skip` without).
        let watches = try [
            "once": BeatWatch(redis: redis, entry: "once"), "skip": BeatWatch(redis: redis, entry: "skip"),
        ]
        defer { for w in watches.values { _ = try? w.stop() } }
        let spawnMs = try client.redisMillis()
        let second = try BeatProcess(redis: redis, schedule: file, name: "second@catchup")
        let readyMs = try client.redisMillis()
        let outage = Double(spawnMs - stoppedMs) / 1000

        XCTAssertTrue(
            try eventually(timeout: 15) {
                try (client.beatEntryField("once", "count") ?? 0) >= (before["once"]?.count ?? 0) + 4
                    && (client.beatEntryField("skip", "count") ?? 0) >= (before["skip"]?.count ?? 0) + 3
            })
        second.terminate()
        XCTAssertEqual(second.exitStatus(), 0, second.log)
        var seen: [String: [BeatWatch.Observation]] = [:]
        for (name, w) in watches { seen[name] = try w.stop() }

        for (name, catchUpMessages) in [("once", 1), ("skip", 0)] {
            let b = try XCTUnwrap(before[name])
            let after = try state(name)
            // The first state after the restart: `due` = the latest due time missed (every due time
            // after b.due up to it was missed), `count` up by the catch-up message(s) only. (A due
            // time passing between the scheduler's start and its first send, a window of a few ms,
            // would be sent in the same pipelined batch and hide this state from the watch.)
            let restartTurn = try XCTUnwrap(
                seen[name]?.first { ($0.due ?? 0) > b.due }, "\(name): the watch saw no turn after the restart")
            let lastMissed = try XCTUnwrap(restartTurn.due)
            // The scheduler's start (its `startedAt`) is between the spawn and the registration (50 ms:
            // its estimate of Redis's clock).
            XCTAssertGreaterThanOrEqual(lastMissed, gridPoint(of: b.due, atOrBefore: spawnMs - 50), name)
            XCTAssertLessThanOrEqual(lastMissed, gridPoint(of: b.due, atOrBefore: readyMs + 50), name)
            XCTAssertEqual((lastMissed - b.due) % 1000, 0, "\(name): on the entry's 1 s grid")
            XCTAssertEqual(
                restartTurn.count, b.count + Int64(catchUpMessages), "\(name): the first turn's sends for the outage")
            let missed = (lastMissed - b.due) / 1000
            let sentSince = after.count - b.count
            let regular = (after.due - lastMissed) / 1000
            print(
                "beat catch_up \(name): outage \(String(format: "%.2f", outage)) s, \(missed) due times missed, "
                    + "\(sentSince) messages since the restart for \(regular) due times after it")
            XCTAssertGreaterThanOrEqual(missed, 4, "\(name): a 5 s outage misses at least 4 due times")
            XCTAssertEqual(Int64(after.messages.count), after.count, "\(name): one message per send counted")
            XCTAssertEqual(
                Array(after.messages.prefix(b.messages.count).map(\.id)), b.messages.map(\.id),
                "\(name): the messages before the outage are still there")
            XCTAssertEqual(sentSince, Int64(catchUpMessages) + regular, "\(name): \(catchUpMessages) for the outage")
            XCTAssertGreaterThanOrEqual(regular, 3)
            XCTAssertTrue(after.messages.allSatisfy { $0.task == "add" && $0.isBeatTask })

            let since = Array(after.messages.dropFirst(b.messages.count))
            let sentAt = try since.map { try XCTUnwrap($0.expires) - expiresSeconds }
            // Every message since the restart was sent after it; the catch-up one first.
            XCTAssertGreaterThanOrEqual((sentAt.min() ?? 0) * 1000, Double(spawnMs) - 50, name)
            // Then each due time after the restart once, on time (within a second).
            for (k, s) in sentAt.dropFirst(catchUpMessages).enumerated() {
                let due = Double(lastMissed + Int64(k + 1) * 1000)
                XCTAssertGreaterThanOrEqual(s * 1000, due - 50, "\(name): regular send \(k)")
                XCTAssertLessThan(s * 1000, due + 1000, "\(name): regular send \(k)")
            }
        }
    }
}
