import CEventShim
import FastCore
import Foundation
import XCTest

/// Claiming by move (`--claim move`) on a real redis-server: the records it writes are
/// the claim script's, and nothing is lost to a worker that dies between a claim and
/// its records.
final class ClaimByMoveTests: RedisTestCase {
    /// Messages of every shape the claim has to read: Celery's own, compact JSON with a
    /// named exchange, no routing key, a key that only ends like `delivery_tag`, a
    /// message larger than the 4 KB tail searched first, and text with no tag at all.
    func odd() -> [String] {
        let celery = TaskMessage(task: "add", args: [1, 2]).envelope()
        let impostor = TaskMessage(task: "add", args: [3, 4]).envelope().replacingOccurrences(
            of: #""headers": {"#, with: #""headers": {"predelivery_tag": "impostor", "xexchange": "no", "#)
        let big = TaskMessage(task: "add", args: [.string(String(repeating: "y", count: 9000))]).envelope()
        return [
            celery, impostor, big,
            #"{"body":"W10=","properties":{"delivery_info":{"exchange":"ex1","routing_key":"rk1"},"delivery_tag":"tag-compact"}}"#,
            #"{"body": "W10=", "properties": {"delivery_info": {"exchange": "e"}, "delivery_tag": "tag-no-routing-key"}}"#,
            "this is not a celery message",
        ]
    }

    /// The keyspace holds these messages' results and the queue's bindings, nothing else.
    func assertOnlyResults(of messages: [TaskMessage], line: UInt = #line) throws {
        let expected =
            messages.map { ResultRecord.key($0.id) } + ["_kombu.binding.celery", "_kombu.binding_permanent.celery"]
        XCTAssertEqual(try client.keys(), Set(expected), line: line)
    }

    /// `n` noop tasks drained by a worker claiming by move, sent `signal` once 500 have
    /// results; returns when it has exited.
    func drainByMove(_ n: Int, stoppedBy signal: Int32, extra: [String]) throws -> ([TaskMessage], Spawned) {
        let messages = (0..<n).map { TaskMessage(task: "noop", args: [.int(Int64($0))]) }
        try enqueue(messages)
        let a = try CelerisProcess.worker(redis: redis, extra: ["-n", "a@test", "--claim", "move"] + extra)
        XCTAssertTrue(try eventually(timeout: 30, interval: 0.005) { try self.client.resultCount() >= 500 })
        kill(a.process.processIdentifier, signal)
        a.process.waitUntilExit()
        return (messages, a)
    }

    /// unacked as tag → record, and the records alone (made-up tags differ between runs).
    func unacked() throws -> (byTag: [String: String], records: [String]) {
        let flat = try client.command("HGETALL", "unacked").elements?.compactMap(\.text) ?? []
        var byTag: [String: String] = [:]
        for i in stride(from: 0, to: flat.count, by: 2) { byTag[flat[i]] = flat[i + 1] }
        return (byTag.filter { !$0.key.hasPrefix("celeris-undecodable-") }, byTag.values.sorted())
    }

    func testMoveRecordsWhatTheScriptRecords() throws {
        let messages = odd()
        for m in messages { try client.command("LPUSH", "celery", m) }
        let script = try DeliveryClaim().claim(on: client, queues: ["celery"], max: 100)
        XCTAssertEqual(script.count, messages.count)
        // The index holds only the tags, kept a skiplist (see `DeliveryClaim.indexWidener`).
        XCTAssertEqual(try client.command("ZCARD", "unacked_index").integer, Int64(messages.count))
        XCTAssertEqual(try client.command("OBJECT", "ENCODING", "unacked_index").text, "skiplist")
        let byScript = try unacked()
        try client.command("DEL", "unacked", "unacked_index")

        for m in messages { try client.command("LPUSH", "celery", m) }
        let byMove = ClaimByMove(hostname: "w1@test")
        let claiming = byMove.claimingKey("celery")
        XCTAssertEqual(ClaimByMove.sourceKey(ofClaimingKey: claiming), "celery")
        let plan = ClaimByMove.plan(keys: ["celery", "other"], lengths: ["celery": messages.count + 2], room: 100)
        try byMove.append(plan, stamp: "1795246218", on: client)
        try client.flush()
        let taken = try byMove.deliveries(plan, on: client)
        // Taken in the queue's order, parked in the claiming list, registered; no record yet.
        XCTAssertEqual(taken.map { String(decoding: $0.raw, as: UTF8.self) }, messages)
        XCTAssertEqual(try client.keys(), [claiming, ClaimByMove.registryKey])
        XCTAssertEqual(try client.command("LLEN", claiming).integer, Int64(messages.count))
        XCTAssertEqual(try client.command("ZSCORE", ClaimByMove.registryKey, claiming).text, "1795246218")

        var out: [UInt8] = []
        let replies = byMove.appendRecords(taken, claiming: [claiming], stamp: "1795246218", to: &out)
        try client.append(resp: out)
        try client.flush()
        for _ in 0..<replies { XCTAssertEqual(try client.readErrors(), []) }
        // The claiming list is gone and kombu's bookkeeping holds the very records the script writes.
        XCTAssertEqual(try client.keys(), ["unacked", "unacked_index"])
        let recorded = try unacked()
        XCTAssertEqual(recorded.byTag.keys.sorted(), byScript.byTag.keys.sorted())
        for (tag, record) in byScript.byTag where recorded.byTag[tag] != record {
            XCTFail("record of \(tag) differs: \(recorded.byTag[tag]?.prefix(120) ?? "none") vs \(record.prefix(120))")
        }
        XCTAssertEqual(recorded.records.count, byScript.records.count)
        XCTAssertTrue(recorded.records == byScript.records, "the records differ")
        let named = { (tags: [String]) in Set(tags.filter { !$0.hasPrefix("celeris-undecodable-") }) }
        XCTAssertEqual(named(taken.map(\.tag)), named(script.map(\.tag)))
        let index = try client.command("ZRANGE", "unacked_index", "0", "-1", "WITHSCORES").elements?.compactMap(\.text)
        XCTAssertEqual(index?.count, 2 * messages.count)
        XCTAssertEqual(try client.command("OBJECT", "ENCODING", "unacked_index").text, "skiplist")
        XCTAssertEqual(Set(stride(from: 1, to: index?.count ?? 0, by: 2).map { index![$0] }), ["1795246218"])
    }

    /// The field search (`ce_find`: memchr for one byte of the name, then memcmp) finds
    /// what a plain search finds, whichever byte anchors it: at either end, overlapping,
    /// absent, longer than the text, over random text of a small alphabet.
    func testFieldSearchFindsTheFirstOccurrenceWhateverItsAnchor() {
        func naive(_ hay: [UInt8], _ needle: [UInt8]) -> Int {
            guard needle.count <= hay.count else { return -1 }
            for i in 0...(hay.count - needle.count) where Array(hay[i..<(i + needle.count)]) == needle { return i }
            return -1
        }
        func find(_ hay: [UInt8], _ needle: [UInt8], _ anchor: Int) -> Int {
            hay.withUnsafeBufferPointer { h in
                needle.withUnsafeBufferPointer { n in ce_find(h.baseAddress, h.count, n.baseAddress, n.count, anchor) }
            }
        }
        var rng = SystemRandomNumberGenerator()
        let cases: [([UInt8], [UInt8])] =
            [
                (Array("abcabcabd".utf8), Array("abcabd".utf8)), (Array("xyz".utf8), Array("xyz".utf8)),
                (Array("xy".utf8), Array("xyz".utf8)), (Array("aaaa".utf8), Array("aab".utf8)),
            ]
            + (0..<300).map { _ in
                let hay = (0..<Int.random(in: 0..<60, using: &rng)).map { _ in UInt8.random(in: 97...99, using: &rng) }
                let needle = (0..<Int.random(in: 1...4, using: &rng)).map { _ in UInt8.random(in: 97...99, using: &rng)
                }
                return (hay, needle)
            }
        for (hay, needle) in cases {
            for anchor in needle.indices {
                XCTAssertEqual(
                    find(hay, needle, anchor), naive(hay, needle),
                    "\(String(decoding: needle, as: UTF8.self)) in \(String(decoding: hay, as: UTF8.self)) anchored at \(anchor)"
                )
            }
        }
    }

    func testPlanFollowsConsumeOrderWithinTheRoom() {
        let keys = ["a", "b", "a\u{6}\u{16}3", "b\u{6}\u{16}3"]
        let lengths = ["a": 3, "b": 0, "a\u{6}\u{16}3": 10, "b\u{6}\u{16}3": 5]
        XCTAssertEqual(ClaimByMove.plan(keys: keys, lengths: lengths, room: 8).map(\.key), ["a", "a\u{6}\u{16}3"])
        XCTAssertEqual(ClaimByMove.plan(keys: keys, lengths: lengths, room: 8).map(\.count), [3, 5])
        XCTAssertEqual(ClaimByMove.plan(keys: keys, lengths: lengths, room: 20).map(\.count), [3, 10, 5])
        XCTAssertTrue(ClaimByMove.plan(keys: keys, lengths: [:], room: 8).isEmpty)
        XCTAssertNil(ClaimByMove.sourceKey(ofClaimingKey: "celeris.claiming:99:short:celery"))
        let odd = ClaimByMove(hostname: "w:1@host:x")
        XCTAssertEqual(ClaimByMove.sourceKey(ofClaimingKey: odd.claimingKey("q:with:colons")), "q:with:colons")
    }

    /// A claiming list left by a dead worker (registered longer ago than the visibility
    /// timeout) goes back to the consuming end of its queue, oldest first; a live one stays.
    func testDeadWorkersClaimingListGoesBackToItsQueueInOrder() throws {
        let messages = (0..<3).map { TaskMessage(task: "noop", args: [.int(Int64($0))]) }
        try enqueue(messages)
        let waiting = TaskMessage(task: "noop", args: [99])
        try enqueue([waiting])
        let dead = ClaimByMove(hostname: "dead@test").claimingKey("celery")
        let live = ClaimByMove(hostname: "live@test").claimingKey("celery")
        for _ in 0..<3 { try client.command("LMOVE", "celery", dead, "RIGHT", "RIGHT") }
        try client.command("LMOVE", "celery", live, "RIGHT", "RIGHT")
        let now = CeleryTime.now()
        try client.command("ZADD", ClaimByMove.registryKey, String(Int(now) - 100), dead, String(Int(now)), live)

        XCTAssertEqual(try ClaimByMove.restoreStale(ceiling: now - 10, on: client), 3)
        XCTAssertEqual(try client.command("EXISTS", dead).integer, 0)
        XCTAssertEqual(try client.command("LLEN", live).integer, 1)
        XCTAssertEqual(
            try client.command("ZRANGE", ClaimByMove.registryKey, "0", "-1").elements?.compactMap(\.text), [live])
        // Consumed from the right: the dead worker's three come back first, in their order.
        let queued = try client.command("LRANGE", "celery", "0", "-1").elements?.compactMap(\.bytes) ?? []
        let ids = try queued.reversed().map { try TaskMessage.decode($0).id }
        XCTAssertEqual(ids, messages.map(\.id))
        XCTAssertEqual(try ClaimByMove.restoreStale(ceiling: now - 10, on: client), 0)
    }

    /// A worker (here a process with a 2 s visibility timeout) restores a dead peer's
    /// claiming list and runs what was in it.
    func testWorkerRestoresADeadPeersClaimingListAndRunsIt() throws {
        let messages = (0..<4).map { TaskMessage(task: "noop", args: [.int(Int64($0))]) }
        try enqueue(messages)
        let dead = ClaimByMove(hostname: "dead@test").claimingKey("celery")
        for _ in messages { try client.command("LMOVE", "celery", dead, "RIGHT", "RIGHT") }
        try client.command("ZADD", ClaimByMove.registryKey, String(Int(CeleryTime.now()) - 60), dead)
        // Nothing is queued: the tasks are only in the dead worker's claiming list.
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 0)
        XCTAssertEqual(try client.command("LLEN", dead).integer, 4)
        let b = try MetricsWorker(redis: redis, extra: ["-n", "b@test", "--visibility-timeout", "2"])
        XCTAssertTrue(
            try eventually(timeout: 20) { try messages.allSatisfy { try self.result($0.id)?["status"] == "SUCCESS" } },
            b.log)
        XCTAssertEqual(try b.received("noop"), 4, "each restored task was claimed once")
        XCTAssertTrue(try eventually(timeout: 5) { try self.client.command("HLEN", "unacked").integer == 0 })
        XCTAssertEqual(try client.command("EXISTS", dead, ClaimByMove.registryKey).integer, 0)
    }

    /// A restarted worker (same name) takes back its own claiming list at once, whatever
    /// its registration's age: nothing in it can be running.
    func testRestartedWorkerTakesBackItsOwnClaimingListAtConnect() throws {
        let messages = (0..<3).map { TaskMessage(task: "noop", args: [.int(Int64($0))]) }
        try enqueue(messages)
        let own = ClaimByMove(hostname: "celeris@test").claimingKey("celery")
        for _ in messages { try client.command("LMOVE", "celery", own, "RIGHT", "RIGHT") }
        try client.command("ZADD", ClaimByMove.registryKey, String(Int(CeleryTime.now())), own)
        let worker = InProcessWorker(redis: redis, claimByMove: true)
        let done = try eventually(timeout: 15) {
            try messages.allSatisfy { try self.result($0.id)?["status"] == "SUCCESS" }
        }
        worker.stop()
        XCTAssertTrue(done)
        try assertOnlyResults(of: messages)
    }

    /// A backlog drained by move (the first claim is the script's, the rest move) leaves
    /// exactly the results: no unacked record, claiming list or registration.
    func testMoveDrainLeavesOnlyResults() throws {
        let messages = (0..<600).map { TaskMessage(task: "noop", args: [.int(Int64($0))]) }
        try enqueue(messages)
        try client.command("CONFIG", "RESETSTAT")
        let worker = InProcessWorker(redis: redis, prefetch: 16, claimByMove: true)
        let done = try eventually(timeout: 30) { try self.client.resultCount() == 600 }
        worker.stop()
        XCTAssertTrue(done)
        try assertOnlyResults(of: messages)
        let stats = try client.command("INFO", "commandstats").text ?? ""
        XCTAssertTrue(stats.contains("cmdstat_sort:calls="), "the backlog was claimed by move")
        for m in messages.prefix(20) { XCTAssertEqual(try result(m.id)?["status"], "SUCCESS") }
    }

    /// A Redis whose ACL denies SORT (a managed Redis may deny @dangerous): the worker
    /// says so, returns what a refused claim registered, claims with the script from then
    /// on, and every task runs once.
    func testRefusedClaimByMoveFallsBackToTheScript() throws {
        let messages = (0..<300).map { TaskMessage(task: "noop", args: [.int(Int64($0))]) }
        try enqueue(messages)
        try client.command("ACL", "SETUSER", "default", "-sort")
        let worker = try CelerisProcess.worker(redis: redis, extra: ["--claim", "move", "--prefetch-multiplier", "16"])
        let done = try eventually(timeout: 30) { try self.client.resultCount() == messages.count }
        XCTAssertTrue(done, worker.log)
        // Refused (SORT was tried and denied), then claimed with the script from then on:
        // a later batch runs with no SORT tried again.
        let rejected = try sortRejections()
        XCTAssertGreaterThan(rejected, 0, "the claim by move was tried")
        let later = (0..<100).map { TaskMessage(task: "noop", args: [.int(Int64($0))]) }
        try enqueue(later)
        XCTAssertTrue(try eventually(timeout: 30) { try self.client.resultCount() == 400 }, worker.log)
        XCTAssertEqual(try sortRejections(), rejected, "no claim by move after the refusal")
        worker.stop()
        // The operator is told once (this log line is the behaviour under test).
        XCTAssertEqual(worker.log.components(separatedBy: "Redis refused the claim by move").count, 2, "said once")
        try client.command("ACL", "SETUSER", "default", "+sort")
        try assertOnlyResults(of: messages + later)
    }

    /// SORT calls Redis refused (ACL), from `INFO commandstats`.
    func sortRejections() throws -> Int {
        let text = try client.command("INFO", "commandstats").text ?? ""
        guard let line = text.split(separator: "\r\n").first(where: { $0.hasPrefix("cmdstat_sort:") }) else { return 0 }
        let field = line.split(separator: ",").first { $0.hasPrefix("rejected_calls=") }
        return Int(field?.dropFirst("rejected_calls=".count) ?? "") ?? 0
    }

    /// SIGTERM in the middle of a drain by move: what was claimed and not started goes
    /// back (recorded first, then returned), what ran has its result, nothing is both,
    /// nothing is lost, and no claiming list or `unacked` record is left.
    func testWarmShutdownMidDrainByMoveReturnsWhatDidNotRun() throws {
        let (messages, a) = try drainByMove(4000, stoppedBy: SIGTERM, extra: ["--prefetch-multiplier", "64"])
        XCTAssertEqual(a.process.terminationStatus, 0, a.log)
        let queued = try client.command("LRANGE", "celery", "0", "-1").elements?.compactMap(\.bytes) ?? []
        let returned = Set(try queued.map { try TaskMessage.decode($0).id })
        let ran = Set(try messages.map(\.id).filter { try result($0) != nil })
        XCTAssertEqual(returned.count, queued.count, "no message queued twice")
        XCTAssertTrue(ran.isDisjoint(with: returned), "\(ran.intersection(returned).count) ran and were returned")
        XCTAssertEqual(ran.union(returned), Set(messages.map(\.id)), "every message ran or is queued")
        XCTAssertLessThan(ran.count, messages.count, "stopped mid-drain")
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
        XCTAssertEqual(try client.command("KEYS", "celeris.claiming*").elements?.count, 0)
    }

    /// SIGKILL in the middle of a drain by move: every task still gets its result (a peer
    /// restores the dead worker's `unacked` and claiming list), and nothing is left over.
    func testKilledMoveWorkerLosesNothing() throws {
        let (messages, _) = try drainByMove(3000, stoppedBy: SIGKILL, extra: ["--visibility-timeout", "2"])
        let parked = try client.keys("celeris.claiming:*").count
        let b = try CelerisProcess.worker(
            redis: redis, extra: ["-n", "b@test", "--claim", "move", "--visibility-timeout", "2"])
        XCTAssertTrue(try eventually(timeout: 60, interval: 0.1) { try self.client.resultCount() == 3000 }, b.log)
        XCTAssertTrue(try eventually(timeout: 10) { try self.client.command("HLEN", "unacked").integer == 0 }, b.log)
        for m in messages { XCTAssertEqual(try result(m.id)?["status"], "SUCCESS", m.id) }
        XCTAssertEqual(try client.command("EXISTS", ClaimByMove.registryKey).integer, 0)
        XCTAssertEqual(try client.command("KEYS", "celeris.claiming*").elements?.count, 0)
        // How often the kill caught a claim parked (SIGSTOP-based parking was flaky under load:
        // making it certain is left to the next round).
        print("killed with \(parked) claiming list(s) parked")
        b.stop()
    }
}
