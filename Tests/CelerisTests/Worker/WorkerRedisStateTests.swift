import FastCore
import Foundation
import Logging
import XCTest

/// The worker's broker bookkeeping on a real redis-server, asserting the whole
/// keyspace before and after.
final class WorkerRedisStateTests: RedisTestCase {
    /// Run an in-process consumer until `done` holds, then stop it and wait for it.
    func consume(until done: () throws -> Bool, timeout: Double = 15, clock: (any WallClock)? = nil) throws {
        let worker = InProcessWorker(redis: redis, clock: clock) { registry in
            registry.register("fail") { _ in throw TaskFailure(type: "ValueError", message: "boom") }
        }
        let ok = try eventually(timeout: timeout, done)
        worker.stop()
        XCTAssertTrue(ok, "condition not reached")
    }

    func testClaimMovesMessageIntoKombuUnackedAtomically() throws {
        let m = TaskMessage(task: "add", args: [2, 3])
        try enqueue([m])
        XCTAssertEqual(try client.keys(), ["celery", "_kombu.binding.celery", "_kombu.binding_permanent.celery"])

        let before = CeleryTime.now()
        let claimed = try DeliveryClaim().claim(on: client, queues: ["celery"], max: 10)
        XCTAssertEqual(claimed.count, 1)
        XCTAssertEqual(claimed[0].tag, m.deliveryTag)
        XCTAssertEqual(claimed[0].queue, "celery")

        // The list is gone and the message sits in unacked exactly as kombu's QoS records it.
        XCTAssertEqual(
            try client.keys(), ["unacked", "unacked_index", "_kombu.binding.celery", "_kombu.binding_permanent.celery"])
        let record = try JSONParser.parse(try client.command("HGET", "unacked", m.deliveryTag).bytes ?? [])
        XCTAssertEqual(record[0], try JSONParser.parse(m.envelope()))
        XCTAssertEqual(record[1], "")
        XCTAssertEqual(record[2], "celery")
        let score = Double(try client.command("ZSCORE", "unacked_index", m.deliveryTag).text ?? "") ?? 0
        XCTAssertEqual(score, before, accuracy: 5)
        XCTAssertEqual(score, score.rounded(), "whole seconds (a listpack zset re-parses fractional scores)")
        XCTAssertGreaterThanOrEqual(score, before.rounded(.down), "rounded up: a lease never looks older")
        XCTAssertEqual(try DeliveryClaim().claim(on: client, queues: ["celery"], max: 10).count, 0)
    }

    /// The claim finds the delivery tag by its name's letters first: a longer key ending
    /// in the same letters ("predelivery_tag") ahead of the real one is not taken for it.
    func testClaimTakesTheDeliveryTagNotAKeyEndingLikeIt() throws {
        let m = TaskMessage(task: "add", args: [1, 2])
        let raw = m.envelope().replacingOccurrences(
            of: #""headers": {"#, with: #""headers": {"predelivery_tag": "impostor", "xexchange": "no", "#)
        XCTAssertTrue(raw.contains("predelivery_tag"))
        try client.command("LPUSH", "celery", raw)
        let claimed = try DeliveryClaim().claim(on: client, queues: ["celery"], max: 10)
        XCTAssertEqual(claimed.map(\.tag), [m.deliveryTag])
        let record = try JSONParser.parse(try client.command("HGET", "unacked", m.deliveryTag).bytes ?? [])
        XCTAssertEqual(record[1], "", "the exchange from delivery_info")
        XCTAssertEqual(record[2], "celery")
    }

    /// The claim looks for the tag, exchange and routing key in the envelope's last 512
    /// bytes first: a field before them (long properties), in JSON with other spacing,
    /// or in a short envelope is still found, and so is a tag after a large body.
    func testClaimFindsDeliveryFieldsInsideAndOutsideTheTail() throws {
        let routed = TaskMessage(task: "add", args: [1, 2])
        let padding = String(repeating: "p", count: 700)
        let longProperties = routed.envelope()
            .replacingOccurrences(
                of: #""delivery_info": {"exchange": "", "routing_key": "celery"}"#,
                with: #""delivery_info": {"exchange": "tasks", "routing_key": "add.fast"}"#
            )
            .replacingOccurrences(of: #""body_encoding""#, with: #""x-padding": "\#(padding)", "body_encoding""#)
        let spaced = TaskMessage(task: "add", args: [3, 4])
        let spacedRaw = spaced.envelope()
            .replacingOccurrences(of: #""exchange": """#, with: #""exchange" :  "direct""#)
            .replacingOccurrences(of: #""delivery_tag": ""#, with: #""delivery_tag":""#)
        let big = TaskMessage(task: "add", args: [.string(String(repeating: "x", count: 100_000)), 1])
        let short = #"{"properties": {"delivery_info": {"exchange": "e", "routing_key": "r"}, "delivery_tag": "t1"}}"#
        for raw in [longProperties, spacedRaw, big.envelope(), short] {
            try client.command("LPUSH", "celery", raw)
        }
        let info = try XCTUnwrap(longProperties.range(of: "delivery_info"))
        XCTAssertGreaterThan(
            longProperties.utf8.distance(from: info.lowerBound, to: longProperties.endIndex), 512,
            "the exchange lies before the last 512 bytes")
        let claimed = try DeliveryClaim().claim(on: client, queues: ["celery"], max: 10)
        XCTAssertEqual(claimed.map(\.tag), [routed.deliveryTag, spaced.deliveryTag, big.deliveryTag, "t1"])
        func record(_ tag: String) throws -> JSON {
            try JSONParser.parse(try client.command("HGET", "unacked", tag).bytes ?? [])
        }
        XCTAssertEqual(try record(routed.deliveryTag)[1], "tasks", "found before the last 512 bytes")
        XCTAssertEqual(try record(routed.deliveryTag)[2], "add.fast")
        XCTAssertEqual(try record(spaced.deliveryTag)[1], "direct", "other spacing")
        XCTAssertEqual(try record(spaced.deliveryTag)[2], "celery")
        XCTAssertEqual(try record(big.deliveryTag)[0]?["headers"]?["id"], .string(big.id))
        XCTAssertEqual(try record("t1")[1], "e")
        XCTAssertEqual(try record("t1")[2], "r")
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 4)
        XCTAssertEqual(try client.command("ZCARD", "unacked_index").integer, 4)
    }

    /// Recovery drops stale `unacked_index` entries whose record is gone (someone deleted
    /// `unacked`), as kombu's restore does: 1,200 of them ahead of a stale delivery no
    /// longer fill every pass's first 1,000 tags and keep that delivery from coming back.
    func testRecoveryDropsIndexEntriesWhoseRecordIsGone() throws {
        let m = TaskMessage(task: "add", args: [1, 2])
        try enqueue([m])
        XCTAssertEqual(try DeliveryClaim().claim(on: client, queues: ["celery"], max: 1).count, 1)
        var stale = ["ZADD", "unacked_index", "2000", m.deliveryTag, "9000", "recent-and-gone"]
        for i in 0..<1200 { stale += [String(1000 + i % 500), "gone-\(i)"] }
        _ = try client.pipeline([stale])
        XCTAssertEqual(try client.command("ZCARD", "unacked_index").integer, 1202)
        let restore = DeliveryRestore()
        // Leases up to 3000 are stale (visibility timeout 3600 at 6600).
        XCTAssertEqual(try restore.recoverStale(on: client, visibilityTimeout: 3600, now: 6600), 0)
        XCTAssertEqual(try client.command("ZCARD", "unacked_index").integer, 202, "the first 1,000 dropped")
        XCTAssertEqual(try restore.recoverStale(on: client, visibilityTimeout: 3600, now: 6600), 1)
        XCTAssertEqual(
            try client.keys(), ["celery", "unacked_index", "_kombu.binding.celery", "_kombu.binding_permanent.celery"])
        XCTAssertEqual(
            try client.command("ZRANGE", "unacked_index", "0", "2").elements?.compactMap(\.text), ["recent-and-gone"],
            "an entry whose lease is not stale stays")
        let back = try XCTUnwrap(try client.command("LRANGE", "celery", "0", "-1").elements?.first?.bytes)
        XCTAssertEqual(try JSONParser.parse(back)["headers"]?["id"], .string(m.id))
        XCTAssertEqual(try JSONParser.parse(back)["headers"]?["redelivered"], true)
    }

    /// A batch claim pops with one LMPOP per non-empty list and records every delivery, in
    /// kombu's format, with one HSET and one ZADD; what is over `max` stays queued.
    func testBatchClaimTakesExactlyMaxAcrossPriorityLists() throws {
        var later = TaskMessage(task: "add", args: [1, 1])
        later.priority = 3  // kombu's step 3: served after step 0
        let normal = (0..<300).map { TaskMessage(task: "add", args: [.int(Int64($0)), 1]) }
        try enqueue([later] + normal)
        let claimed = try DeliveryClaim().claim(on: client, queues: ["celery"], max: 250)
        XCTAssertEqual(claimed.count, 250)
        XCTAssertEqual(claimed.map(\.tag), normal[..<250].map(\.deliveryTag), "oldest first (RPOP)")
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 50)
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 250)
        XCTAssertEqual(try client.command("ZCARD", "unacked_index").integer, 250)
        let record = try JSONParser.parse(try client.command("HGET", "unacked", normal[100].deliveryTag).bytes ?? [])
        XCTAssertEqual(record[0]?["headers"]?["id"], .string(normal[100].id))
        XCTAssertEqual(record[2], "celery")
        let rest = try DeliveryClaim().claim(on: client, queues: ["celery"], max: 100)
        XCTAssertEqual(rest.map(\.tag), normal[250...].map(\.deliveryTag) + [later.deliveryTag])
        XCTAssertEqual(rest.last?.listKey, "celery\u{06}\u{16}3")
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 301)
    }

    /// Where Redis has no LMPOP (before 7.0) the claim pops each list in turn: the same
    /// deliveries in the same order, and the same bookkeeping, as the one-call path above.
    func testClaimWithoutLMPOPTakesTheSameDeliveries() throws {
        let versionCheck = "(redis.REDIS_VERSION_NUM or 0) >= 0x070000"
        XCTAssertTrue(DeliveryClaim.script.source.contains(versionCheck))
        let perList = RedisScript(DeliveryClaim.script.source.replacingOccurrences(of: versionCheck, with: "false"))
        var later = TaskMessage(task: "add", args: [1, 1])
        later.priority = 3
        let normal = (0..<300).map { TaskMessage(task: "add", args: [.int(Int64($0)), 1]) }
        try enqueue([later] + normal)
        let keys =
            [DeliveryClaim.unackedKey, DeliveryClaim.unackedIndexKey] + QueueKeys.consumeOrder(queues: ["celery"])
        func tags(_ reply: RedisValue) -> [String] {
            let items = reply.elements ?? []
            return stride(from: 0, to: items.count, by: 3).compactMap { items[$0].text }
        }
        XCTAssertEqual(tags(try perList.run(on: client, keys: keys, args: ["250"])), normal[..<250].map(\.deliveryTag))
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 50)
        let rest = try perList.run(on: client, keys: keys, args: ["100"])
        XCTAssertEqual(tags(rest), normal[250...].map(\.deliveryTag) + [later.deliveryTag])
        XCTAssertEqual(rest.elements?[rest.elements!.count - 2].text, "celery\u{06}\u{16}3")
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 301)
        XCTAssertEqual(try client.command("ZCARD", "unacked_index").integer, 301)
        XCTAssertEqual(tags(try perList.run(on: client, keys: keys, args: ["10"])), [], "all lists empty")
    }

    /// A claim sent ahead after Redis lost the script (a restart, SCRIPT FLUSH) reads
    /// NOSCRIPT, takes nothing, and is claimed again with the script reloaded.
    func testClaimSentAheadAfterScriptFlushIsClaimedAgain() throws {
        let claim = DeliveryClaim()
        XCTAssertEqual(try claim.claim(on: client, queues: ["celery"], max: 5).count, 0, "loads the script")
        let ms = (0..<3).map { TaskMessage(task: "add", args: [.int(Int64($0)), 1]) }
        try enqueue(ms)
        try client.command("SCRIPT", "FLUSH")
        let pending = try XCTUnwrap(try claim.start(on: client, queues: ["celery"], max: 5))
        XCTAssertNil(try claim.finish(pending, on: client))
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 3, "nothing taken")
        XCTAssertEqual(try client.command("EXISTS", "unacked").integer, 0)
        let took = try claim.retry(pending, on: client)
        XCTAssertEqual(took.map(\.tag), ms.map(\.deliveryTag))
        XCTAssertEqual(took.map(\.raw), ms.map { Array($0.envelope().utf8) })
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 3)
        XCTAssertEqual(try client.command("ZCARD", "unacked_index").integer, 3)
        XCTAssertEqual(try client.command("EXISTS", "celery").integer, 0)
    }

    /// A consumer whose Redis loses the claim script keeps consuming: every task ends
    /// SUCCESS and the bookkeeping is empty again.
    func testConsumerKeepsConsumingAfterScriptFlush() throws {
        let first = TaskMessage(task: "add", args: [1, 1])
        try enqueue([first])
        let ms = (0..<200).map { TaskMessage(task: "add", args: [.int(Int64($0)), 1]) }
        let results = ms.map { ResultRecord.key($0.id) }
        var flushed = false
        try consume(until: {
            if !flushed, try self.client.command("EXISTS", ResultRecord.key(first.id)).integer == 1 {
                try self.client.command("SCRIPT", "FLUSH")  // the worker claimed with the script: it has it loaded
                try self.enqueue(ms)
                flushed = true
            }
            return try self.client.pipeline([["EXISTS"] + results])[0].integer == 200
        })
        XCTAssertEqual(
            try client.keys(),
            Set(
                ([first] + ms).map { ResultRecord.key($0.id) } + [
                    "_kombu.binding.celery", "_kombu.binding_permanent.celery",
                ]))
    }

    /// A claim answered with an error (here BUSY: another client's script is running)
    /// is logged and retried after a pause on the same connection: no reconnect storm,
    /// and the queue is served once Redis answers again. The worker's clock is held:
    /// moving it lets the idle poll, then the pause's end, send the next claim.
    func testClaimErrorReplyIsWaitedOutWithoutReconnecting() throws {
        let first = TaskMessage(task: "add", args: [1, 1])
        try enqueue([first])
        let clock = ManualClock(CeleryTime.now())
        let worker = InProcessWorker(redis: redis, clock: clock)
        defer { worker.stop() }
        XCTAssertTrue(try eventually { try self.client.command("EXISTS", ResultRecord.key(first.id)).integer == 1 })
        try client.command("CONFIG", "SET", "busy-reply-threshold", "100")
        func connections() throws -> Int { try client.info("stats", "total_connections_received") ?? -1 }
        let before = try connections()
        let busy = try RedisConnection(endpoint: redis.endpoint, readTimeoutMs: 0)
        try busy.append(["EVAL", "while true do end", "0"])
        try busy.flush()
        // Redis answers nothing else meanwhile: what the worker keeps of a refused claim is its log line.
        // (Claiming by move, the first refusal also turns the worker to the script.)
        func refusals() -> [String] {
            worker.errors.get().filter {
                $0.hasPrefix("claim failed: ") || $0.hasPrefix("Redis refused the claim by move")
            }
        }
        for n in 1...3 {
            clock.advance(1)  // past the idle poll, then past each refusal's pause (0.5 s)
            XCTAssertTrue(eventually { refusals().count >= n }, "claim \(n) read -BUSY")
        }
        let killer = try RedisConnection(endpoint: redis.endpoint)
        XCTAssertTrue(
            eventually(timeout: 5) { (try? killer.command("SCRIPT", "KILL")) != nil }, "the busy script was killed")
        XCTAssertNotNil(try busy.read().errorMessage, "the killed script's caller gets an error")
        XCTAssertLessThanOrEqual(try connections() - before, 3, "the worker kept its connection")
        XCTAssertEqual(worker.errors.get().count, refusals().count, "no other error: \(worker.errors.get())")
        clock.advance(1)  // past the last refusal's pause
        let second = TaskMessage(task: "add", args: [2, 2])
        try enqueue([second])
        XCTAssertTrue(try eventually { try self.client.command("EXISTS", ResultRecord.key(second.id)).integer == 1 })
    }

    /// The consumer's write batch: completions merged into one MULTI with one ZREM
    /// and one HDEL for every ack; progress writes keep their order in front.
    func testCompletionsShareOneTransactionWithFoldedAcks() throws {
        let ms = (0..<3).map { TaskMessage(task: "add", args: [.int(Int64($0)), 1]) }
        try enqueue(ms)
        let claimed = try DeliveryClaim().claim(on: client, queues: ["celery"], max: 10)
        XCTAssertEqual(claimed.count, 3)
        let progress: [[String]] = [["PUBLISH", "task_status", "{}"]]
        // The first from commands, the others as an executor encodes them (the last into a
        // recycled buffer still holding a written part's bytes): the same bytes.
        var recycled = Array("a written part's stale bytes".utf8)
        let completions = ms.enumerated().map { (i, m) in
            let record = ResultRecord(taskId: m.id, state: .success, result: 2, dateDone: 1)
            guard i > 0 else {
                return WriteBatch.Part(
                    [["MULTI"]] + record.storeCommands() + [["EXEC"]], acknowledging: m.deliveryTag)
            }
            var part = i == 2 ? WriteBatch.Part(reusing: &recycled) : WriteBatch.Part()
            part.store(record)
            part.acknowledge(m.deliveryTag)
            return part
        }
        XCTAssertEqual(recycled, [], "the part took the buffer")
        var batch = WriteBatch()
        for part in [completions[0], WriteBatch.Part(progress), completions[1], completions[2]] { batch.add(part) }
        batch.add(own: [["SET", "own", "last"]])
        let expected: [[String]] =
            progress + [["MULTI"]]
            + ms.flatMap { m in
                ResultRecord(taskId: m.id, state: .success, result: 2, dateDone: 1).storeCommands()
            } + [
                ["ZREM", "unacked_index"] + ms.map(\.deliveryTag), ["HDEL", "unacked"] + ms.map(\.deliveryTag),
                ["EXEC"],
                ["SET", "own", "last"],
            ]
        var wire: [UInt8] = []
        for c in expected { RESP.append(c, to: &wire) }
        XCTAssertEqual(batch.wire, wire, "one MULTI, acks folded, progress first, own writes last")
        XCTAssertEqual(batch.replies, expected.count)
        try client.append(resp: batch.wire)
        for _ in 0..<batch.replies { XCTAssertEqual(try client.readErrors(), []) }
        try client.command("DEL", "own")
        XCTAssertEqual(
            try client.keys(),
            Set(ms.map { ResultRecord.key($0.id) } + ["_kombu.binding.celery", "_kombu.binding_permanent.celery"]))
    }

    /// The idle consumer's waker fires when a message lands, and leaves the list as it was;
    /// the outbox's wait ends on its socket, or on a post, whichever comes first.
    func testQueueWakerFiresOnPushAndLeavesTheMessageQueued() throws {
        let waker = QueueWaker(endpoint: redis.endpoint, listKey: "celery", logger: Logger(label: "test"))
        defer { waker.stop() }
        let outbox = Outbox()
        XCTAssertNil(waker.socket, "not armed yet")
        waker.arm(now: 0)
        let socket = try XCTUnwrap(waker.socket)
        XCTAssertTrue(waker.isArmed)
        var ready: [Int32] = []
        XCTAssertTrue(outbox.take(waitingUpTo: 0.3, watching: [socket], readable: &ready).isEmpty)
        XCTAssertEqual(ready, [], "an empty list does not wake the consumer")

        let posted = Outbox.Entry(commands: [["PING"]])
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.1) { outbox.post(posted) }
        let started = Date()
        XCTAssertEqual(outbox.take(waitingUpTo: 5, watching: [socket], readable: &ready).count, 1)
        XCTAssertLessThan(Date().timeIntervalSince(started), 4, "a post ends the wait")
        XCTAssertEqual(ready, [])

        let m = TaskMessage(task: "add", args: [2, 3])
        try enqueue([m])
        XCTAssertTrue(outbox.take(waitingUpTo: 5, watching: [socket], readable: &ready).isEmpty)
        XCTAssertEqual(ready, [socket], "the message ends the wait")
        XCTAssertTrue(waker.fired(now: 0))
        XCTAssertFalse(waker.isArmed, "disarmed after one wake")
        XCTAssertNil(waker.socket)
        XCTAssertEqual(try client.command("LRANGE", "celery", "0", "-1").elements?.compactMap(\.text), [m.envelope()])
    }

    func testTaskRunLeavesOnlyItsResult() throws {
        let m = TaskMessage(task: "add", args: [2, 3])
        try enqueue([m])
        try consume(until: { try self.client.command("EXISTS", ResultRecord.key(m.id)).integer == 1 })

        XCTAssertEqual(
            try client.keys(), [ResultRecord.key(m.id), "_kombu.binding.celery", "_kombu.binding_permanent.celery"])
        let ttl = try client.command("TTL", ResultRecord.key(m.id)).integer ?? 0
        XCTAssertTrue((86390...86400).contains(ttl), "ttl \(ttl)")
        let result = try JSONParser.parse(try client.command("GET", ResultRecord.key(m.id)).bytes ?? [])
        XCTAssertEqual(
            result.objectPairs?.map(\.key), ["status", "result", "traceback", "children", "date_done", "task_id"])
        XCTAssertEqual(result["status"], "SUCCESS")
        XCTAssertEqual(result["result"], 5)
        XCTAssertEqual(result["task_id"], .string(m.id))
    }

    func testFailuresAndUnknownTasksEndAsFailureRecords() throws {
        let failing = TaskMessage(task: "fail")
        let unknown = TaskMessage(task: "not_registered_anywhere", args: [1])
        let wrongArgs = TaskMessage(task: "add", args: ["a", 1])
        try enqueue([failing, unknown, wrongArgs])
        let ids = [failing.id, unknown.id, wrongArgs.id]
        try consume(until: {
            try ids.allSatisfy { try self.client.command("EXISTS", ResultRecord.key($0)).integer == 1 }
        })

        func result(_ id: String) throws -> JSON {
            try JSONParser.parse(try client.command("GET", ResultRecord.key(id)).bytes ?? [])
        }
        XCTAssertEqual(
            try result(failing.id)["result"],
            ["exc_type": "ValueError", "exc_message": ["boom"], "exc_module": "builtins"])
        XCTAssertEqual(try result(unknown.id)["status"], "FAILURE")
        XCTAssertEqual(
            try result(unknown.id)["result"],
            [
                "exc_type": "NotRegistered", "exc_message": ["not_registered_anywhere"],
                "exc_module": "celery.exceptions",
            ])
        XCTAssertEqual(try result(wrongArgs.id)["result"]?["exc_type"], "TypeError")
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
        XCTAssertEqual(try client.command("ZCARD", "unacked_index").integer, 0)
    }

    func testPoisonMessagesGoToDeadLetterOnceAndTheNextTaskRuns() throws {
        try client.command("LPUSH", "celery", "this is not a celery message")
        let badBody =
            #"{"body": "WzEsIDJd", "headers": {"task": "add", "id": "x1"}, "properties": {"delivery_tag": "tag-bad-body", "body_encoding": "base64"}}"#
        try client.command("LPUSH", "celery", badBody)
        let good = TaskMessage(task: "add", args: [20, 22])
        try enqueue([good])
        try consume(until: { try self.client.command("EXISTS", ResultRecord.key(good.id)).integer == 1 })

        XCTAssertEqual(
            try client.keys(),
            [
                ResultRecord.key(good.id), "celeris.dead_letter", "_kombu.binding.celery",
                "_kombu.binding_permanent.celery",
            ])
        let dead = try client.command("LRANGE", "celeris.dead_letter", "0", "-1").elements?.compactMap(\.bytes) ?? []
        XCTAssertEqual(dead.count, 2)
        let entries = try dead.map { try JSONParser.parse($0) }
        let byMessage = Dictionary(uniqueKeysWithValues: entries.map { ($0["message"]?.stringValue ?? "", $0) })
        XCTAssertTrue(byMessage["this is not a celery message"]?["reason"]?.stringValue?.contains("not JSON") ?? false)
        XCTAssertTrue(byMessage[badBody]?["reason"]?.stringValue?.contains("[args, kwargs, embed]") ?? false)
        XCTAssertEqual(byMessage[badBody]?["queue"], "celery")
        let result = try JSONParser.parse(try client.command("GET", ResultRecord.key(good.id)).bytes ?? [])
        XCTAssertEqual(result["result"], 42)
    }

    func testProgressIsStoredAndPublished() throws {
        let sub = try redis.client()
        try sub.command("SUBSCRIBE", "task_status")
        let m = TaskMessage(task: "create_task", args: [2])
        try enqueue([m])
        let clock = ManualClock(CeleryTime.now())
        try consume(until: { try self.client.command("EXISTS", ResultRecord.key(m.id)).integer == 1 }, clock: clock)
        var updates: [JSON] = []
        while updates.count < 3 {
            let msg = try sub.read()
            if let payload = msg.elements?.last?.bytes { updates.append(try JSONParser.parse(payload)) }
        }
        XCTAssertEqual(updates.map { $0["state"] }, ["PROGRESS", "PROGRESS", "SUCCESS"])
        XCTAssertEqual(updates.map { $0["progress"] }, [0, 1, 2])
        XCTAssertTrue(updates.allSatisfy { $0["task_id"] == .string(m.id) && $0["total"] == 2 })
        XCTAssertEqual(
            updates.map { $0["ts"] }, Array(repeating: .double(clock.now()), count: 3), "stamped by the worker's clock")
        let result = try JSONParser.parse(try client.command("GET", ResultRecord.key(m.id)).bytes ?? [])
        XCTAssertEqual(result["result"], ["status": "Task completed"])
        XCTAssertEqual(result["date_done"], .string(CeleryTime.isoformat(clock.now())))
    }
}
