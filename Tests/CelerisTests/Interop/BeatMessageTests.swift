import FastCore
import Foundation
import XCTest

/// `BeatMessage` against real Celery 5.7: what `celery beat` LPUSHes for an entry of a schedule
/// file, field by field, and a Python Celery worker running what Celeris sends.
final class BeatMessageTests: RedisTestCase {
    /// One entry due every second with args, kwargs, queue, priority and expires.
    let scheduleText = #"""
        {"beat_schedule": {"every-second": {"task": "add", "schedule": 1, "args": [2], "kwargs": {"y": 3},
         "options": {"queue": "beatq", "priority": 5, "expires": 30}, "catch_up": "skip"}}}
        """#

    /// Run `celery beat` on `schedule` until it has sent one message; that message's raw envelope
    /// and the epoch seconds just before beat started and just after the message was seen.
    func celeryBeatMessage(schedule: String, listKey: String) throws -> (raw: [UInt8], from: Double, to: Double) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("celeris-beat-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("schedule.json")
        try schedule.write(to: file, atomically: true, encoding: .utf8)
        let from = CeleryTime.now()
        let beat = try Spawned(
            try TestPaths.python(),
            [
                "-m", "celery", "-A", "beat_app", "beat", "-s", dir.appendingPathComponent("beat-state").path,
                "--loglevel=info",
            ],
            env: ["CELERY_BROKER_URL": redis.url, "BEAT_SCHEDULE_FILE": file.path], cwd: TestPaths.fixtures,
            name: "pybeat")
        defer { beat.stop() }
        let sent = try eventually(timeout: 30) { (try client.command("LLEN", listKey).integer ?? 0) > 0 }
        let to = CeleryTime.now()
        guard sent else { throw TestFailure("celery beat sent nothing to \(listKey):\n\(beat.log)") }
        beat.stop()
        guard let raw = try client.command("LINDEX", listKey, "-1").bytes else {
            throw TestFailure("no message at \(listKey)")
        }
        return (raw, from, to)
    }

    /// The Redis keys (and set members) the send left, list contents aside.
    func keysAndBindings() throws -> [String: [String]] {
        var out: [String: [String]] = [:]
        for key in (try client.command("KEYS", "*").elements ?? []).compactMap(\.text) {
            let type = try client.command("TYPE", key).text ?? ""
            out[key] =
                type == "set"
                ? (try client.command("SMEMBERS", key).elements ?? []).compactMap(\.text).sorted() : [type]
        }
        return out
    }

    func testMatchesWhatCeleryBeatSendsFieldByField() throws {
        let entry = try XCTUnwrap(try ScheduleFile.parse(scheduleText).entries.first)
        let listKey = QueueKeys.listKey(queue: "beatq", priority: 5)
        let (raw, from, to) = try celeryBeatMessage(schedule: scheduleText, listKey: listKey)
        let beatKeys = try keysAndBindings()
        let theirs = try JSONParser.parse(raw)

        _ = try client.command("FLUSHALL")
        var producer = TaskProducer()
        let sentAt = CeleryTime.now()
        for reply in try client.pipeline(BeatMessage.sendCommands(for: entry, sentAt: sentAt, producer: &producer)) {
            XCTAssertNil(reply.errorMessage)
        }
        XCTAssertEqual(try keysAndBindings(), beatKeys, "the same list and kombu bindings")
        let ourRaw = try XCTUnwrap(try client.command("LINDEX", listKey, "-1").bytes)
        let ours = try JSONParser.parse(ourRaw)

        // Per message: ids, the sender, the expiry instant (checked below).
        let varying: Set<String> = ["id", "root_id", "correlation_id", "reply_to", "delivery_tag", "origin", "expires"]
        func compare(_ a: JSON?, _ b: JSON?, at path: String) {
            guard case .object(let pa)? = a, case .object(let pb)? = b else {
                XCTAssertEqual(a, b, path)
                return
            }
            XCTAssertEqual(pa.map(\.key), pb.map(\.key), "keys (in order) of \(path)")
            for (key, value) in pa where !varying.contains(key) {
                compare(value, b?[key], at: path + "." + key)
            }
        }
        compare(ours, theirs, at: "envelope")
        XCTAssertEqual(ours["properties"]?["expiration"], "30000")
        XCTAssertEqual(ours["headers"]?["celery_beat_task"], true)

        // The body: args, kwargs and embed, decoded.
        let ourBody = try XCTUnwrap(KombuEnvelope.body(of: ourRaw))
        let theirBody = try XCTUnwrap(KombuEnvelope.body(of: raw))
        XCTAssertEqual(ourBody, theirBody)
        XCTAssertEqual(ourBody[0], [2])

        // The varying fields relate the same way: one id for id/root_id/correlation_id, and
        // expires 30 s after sending.
        for (name, m) in [("ours", ours), ("celery beat's", theirs)] {
            let id = m["headers"]?["id"]
            XCTAssertNotNil(id?.stringValue, name)
            XCTAssertEqual(m["headers"]?["root_id"], id, name)
            XCTAssertEqual(m["properties"]?["correlation_id"], id, name)
        }
        let theirExpires = try XCTUnwrap(theirs["headers"]?["expires"]?.stringValue.flatMap(CeleryTime.parse))
        XCTAssertTrue(
            (from + 30 - 0.01...to + 30 + 0.01).contains(theirExpires),
            "beat's expires \(theirExpires) in \(from)...\(to)")
        XCTAssertEqual(ours["headers"]?["expires"]?.stringValue, CeleryTime.isoformat(sentAt + 30))
        XCTAssertEqual(
            ours["headers"]?["expires"]?.stringValue?.count, theirs["headers"]?["expires"]?.stringValue?.count)
    }

    /// Without options: the default queue, priority 0, no `expires`, no `expiration`.
    func testMatchesCeleryBeatWithoutOptions() throws {
        let text = #"{"beat_schedule": {"plain": {"task": "noop", "schedule": 1, "args": [7]}}}"#
        let entry = try XCTUnwrap(try ScheduleFile.parse(text).entries.first)
        let (raw, _, _) = try celeryBeatMessage(schedule: text, listKey: "celery")
        let theirs = try JSONParser.parse(raw)
        let ours = try JSONParser.parse(
            BeatMessage.envelope(of: BeatMessage.message(for: entry, sentAt: CeleryTime.now()), for: entry))
        XCTAssertEqual(ours["properties"]?.objectPairs?.map(\.key), theirs["properties"]?.objectPairs?.map(\.key))
        XCTAssertEqual(ours["headers"]?.objectPairs?.map(\.key), theirs["headers"]?.objectPairs?.map(\.key))
        for key in ["expires", "ignore_result", "celery_beat_task", "task", "argsrepr", "kwargsrepr", "eta"] {
            XCTAssertEqual(ours["headers"]?[key], theirs["headers"]?[key], key)
        }
        XCTAssertEqual(ours["properties"]?["priority"], theirs["properties"]?["priority"])
        XCTAssertEqual(ours["properties"]?["delivery_info"], theirs["properties"]?["delivery_info"])
        XCTAssertNil(theirs["properties"]?["expiration"])
    }

    /// A Python Celery worker runs the message to its result; one already expired it revokes.
    func testPythonWorkerRunsBeatMessage() throws {
        try runsBeatMessages { try PythonWorker.spawn(redis: redis, queues: "beatq") }
        XCTAssertEqual(try client.command("HLEN", PythonWorker.succeededKey).integer, 1)
    }

    /// A Celeris worker does the same.
    func testCelerisWorkerRunsBeatMessage() throws {
        try runsBeatMessages { try CelerisProcess.worker(redis: redis, extra: ["-Q", "beatq"]) }
    }

    /// Send the schedule's entry and a copy of it expired a minute ago, start the worker `spawn`
    /// makes, and check that it ran the first (`add(2, y=3)` = 5) and revoked the second.
    func runsBeatMessages(_ spawn: () throws -> Spawned) throws {
        let entry = try XCTUnwrap(try ScheduleFile.parse(scheduleText).entries.first)
        var expired = entry
        expired.options.expires = 0
        var producer = TaskProducer()
        let id = TaskMessage.newId()
        let expiredId = TaskMessage.newId()
        let now = CeleryTime.now()
        try client.pipeline(
            BeatMessage.sendCommands(for: expired, sentAt: now - 60, id: expiredId, producer: &producer)
                + BeatMessage.sendCommands(for: entry, sentAt: now, id: id, producer: &producer)
        ).forEach { XCTAssertNil($0.errorMessage) }
        let worker = try spawn()
        let done = try eventually(timeout: 30) {
            try result(id)?["status"] == "SUCCESS" && result(expiredId)?["status"] != nil
        }
        XCTAssertTrue(done, "worker log:\n\(worker.log)")
        XCTAssertEqual(try result(id)?["result"], 5)
        XCTAssertEqual(try result(expiredId)?["status"], "REVOKED")
    }
}
