@testable import FastCore
import Foundation
import XCTest

/// Broker faults on the worker's write path, against a real redis-server: Redis out of
/// memory under `noeviction`, a replica (READONLY), a dataset loading (LOADING), and a
/// silent partition (a proxy that stops forwarding). Tasks finish while the fault lasts;
/// their writes are refused or lost, counted as failures, kept (their deliveries stay
/// held) and sent again; when the fault is lifted, every task's result is stored and
/// nothing is left in `unacked`.
final class BrokerFaultTests: RedisTestCase {
    /// Tasks that block until the test opens the gate (so they finish during the fault).
    private let gate = DispatchSemaphore(value: 0)
    private let started = LockedBox(0)

    override func tearDown() {
        for _ in 0..<16 { gate.signal() }  // no task thread stays blocked
        super.tearDown()
    }

    /// A worker with the gated task `wait_gate`, and `count` of them queued and running.
    private func startGatedTasks(
        _ count: Int, clock: ManualClock? = nil, endpoint: RedisEndpoint? = nil,
        register: (inout TaskRegistry) -> Void = { _ in }
    ) throws -> (InProcessWorker, [TaskMessage]) {
        let gate = self.gate
        let started = self.started
        let worker = InProcessWorker(
            redis: redis, concurrency: count, prefetch: 1, clock: clock, endpoint: endpoint,
            register: { r in
                r.register("wait_gate") { ctx in
                    started.modify { $0 += 1 }
                    gate.wait()
                    return ctx.argument(0, "x") ?? .null
                }
                register(&r)
            })
        let messages = (0..<count).map { TaskMessage(task: "wait_gate", args: [.int(Int64($0))]) }
        try enqueue(messages)
        XCTAssertTrue(eventually { started.get() == count }, "the tasks started")
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, Int64(count))
        return (worker, messages)
    }

    private func openGate(_ count: Int) { for _ in 0..<count { gate.signal() } }

    /// Every task's result stored (its own), and nothing held in `unacked` or its index.
    private func assertAllStoredAndAcked(_ messages: [TaskMessage], worker: InProcessWorker) throws {
        XCTAssertTrue(
            try eventually(timeout: 30) {
                try messages.allSatisfy { try self.result($0.id) != nil }
                    && self.client.command("HLEN", "unacked").integer == 0
                    && self.client.command("ZCARD", "unacked_index").integer == 0
            }, "errors \(worker.errors.get())")
        for m in messages {
            XCTAssertEqual(try result(m.id)?["status"], "SUCCESS")
            XCTAssertEqual(try result(m.id)?["result"], m.args[0])
        }
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 0)
    }

    /// Queue `chord` the way Celery does; its group id and its body's task id.
    private func sendChord(_ chord: Canvas) throws -> (gid: String, bodyId: String) {
        let (commands, bodyId) = chord.sendCommands()
        let gid = try XCTUnwrap(
            commands.first { $0.first == "SET" && $0.count > 1 && $0[1].hasSuffix(".s") }?[1]
                .dropFirst(Canvas.setPrefix.count).dropLast(2))
        for reply in try client.pipeline(commands) { XCTAssertNil(reply.errorMessage) }
        return (String(gid), bodyId)
    }

    /// A chord of two headers returning 1 MiB each (`big_now`, and the gated `big_gated`)
    /// whose body goes to `bodyq`: once the first header is counted and the second runs,
    /// Redis gets a limit (3.5 MB above its use, `noeviction`) that lets the last header's
    /// result land but not the body carrying both, and the second header is let finish.
    private func startChordOfBigHeaders(clock: ManualClock? = nil, endpoint: RedisEndpoint? = nil) throws -> (
        worker: InProcessWorker, gid: String, bodyId: String
    ) {
        let gate = self.gate
        let started = self.started
        let big = String(repeating: "x", count: 1 << 20)
        let worker = InProcessWorker(
            redis: redis, concurrency: 2, prefetch: 1, clock: clock, endpoint: endpoint,
            register: { r in
                r.register("big_now") { _ in .string(big) }
                r.register("big_gated") { _ in
                    started.modify { $0 += 1 }
                    gate.wait()
                    return .string(big)
                }
            })
        let body = Signature("tsum", options: ["queue": "bodyq"])
        let (gid, bodyId) = try sendChord(
            Canvas.chord([.task(Signature("big_now")), .task(Signature("big_gated"))], body))
        XCTAssertTrue(
            try eventually {
                try started.get() == 1 && self.client.command("ZCARD", "\(Canvas.setPrefix)\(gid).j").integer == 1
                    && self.client.command("HLEN", "unacked").integer == 1
            }, "the first header counted, the second running")
        let used = try XCTUnwrap(try client.info("memory", "used_memory"))
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory-policy", "noeviction").text, "OK")
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory", String(used + 3_500_000)).text, "OK")
        openGate(1)
        return (worker, gid, bodyId)
    }

    /// The worker's loop does not spin: fewer than 100 turns in the next second.
    private func assertLoopDoesNotSpin(_ worker: InProcessWorker) {
        let turns = worker.consumer.turns.get()
        XCTAssertFalse(eventually(timeout: 1) { worker.consumer.turns.get() - turns > 100 }, "the loop spun")
        XCTAssertLessThan(worker.consumer.turns.get() - turns, 100)
    }

    /// Redis out of memory with `noeviction`: the results' transaction is refused (OOM on
    /// each queued command, EXECABORT on EXEC). Before, the batch counted as written: the
    /// deliveries were let go and their results lost until the visibility timeout.
    func testOutOfMemoryWritesAreKeptAndSentAgain() throws {
        let (worker, messages) = try startGatedTasks(3)
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory-policy", "noeviction").text, "OK")
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory", "1").text, "OK")
        openGate(3)
        XCTAssertTrue(eventually { worker.consumer.writeFailures["oom", default: 0] >= 2 }, "\(worker.errors.get())")
        // Refused, and retried (a second failure): nothing stored, every delivery still held.
        for m in messages { XCTAssertNil(try result(m.id)) }
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 3)
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory", "0").text, "OK")
        try assertAllStoredAndAcked(messages, worker: worker)
        worker.stop()
    }

    /// The worker's Prometheus counter `celeris_worker_write_failures_total{reason="oom"}`
    /// counts the writes refused while Redis is out of memory (a spawned `celeris-worker`,
    /// whose tasks post progress all along); every result lands once the limit is lifted.
    func testRefusedWritesAreCountedInTheWorkersMetrics() throws {
        let worker = try MetricsWorker(redis: redis, step: "0.05")
        let messages = (0..<2).map { _ in TaskMessage(task: "create_task", args: [40]) }
        try enqueue(messages)
        XCTAssertTrue(
            try eventually {
                try self.client.command("HLEN", "unacked").integer == 2
                    && messages.allSatisfy { try self.result($0.id)?["status"] == "PROGRESS" }
            }, worker.log)
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory-policy", "noeviction").text, "OK")
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory", "1").text, "OK")
        let oom = #"celeris_worker_write_failures_total{reason="oom"}"#
        XCTAssertTrue(try eventually { try worker.metrics()[oom] ?? 0 >= 2 }, worker.log)
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory", "0").text, "OK")
        XCTAssertTrue(
            try eventually(timeout: 30) {
                try messages.allSatisfy { try self.result($0.id)?["status"] == "SUCCESS" }
                    && self.client.command("HLEN", "unacked").integer == 0
                    && self.client.command("ZCARD", "unacked_index").integer == 0
            }, worker.log)
        XCTAssertTrue(worker.isRunning)
    }

    /// Which error replies make a write "not now" (sent again) and which are the command's
    /// own fault (logged, as before): an EXECABORT alone (a malformed queued command) or a
    /// WRONGTYPE would fail the same way again.
    func testRefusalsThatAreTheServersStateAreRetriedOthersNot() {
        let oom = "OOM command not allowed when used memory > 'maxmemory'."
        XCTAssertEqual(
            WriteFailure(errors: [oom, "EXECABORT Transaction discarded because of previous errors."])?.reason, "oom")
        XCTAssertEqual(
            WriteFailure(errors: ["READONLY You can't write against a read only replica."])?.reason, "readonly")
        XCTAssertEqual(WriteFailure(errors: ["LOADING Redis is loading the dataset in memory"])?.reason, "loading")
        XCTAssertEqual(WriteFailure(errors: ["BUSY Redis is busy running a script."])?.reason, "busy")
        XCTAssertNil(WriteFailure(errors: ["EXECABORT Transaction discarded because of previous errors."]))
        XCTAssertNil(WriteFailure(errors: ["WRONGTYPE Operation against a key holding the wrong kind of value"]))
        XCTAssertNil(WriteFailure(errors: []))
    }

    /// The server turned replica (as after a failover): writes get READONLY until it is a
    /// master again. Its master is a port nothing listens on, so it keeps its data.
    func testReadOnlyWritesAreKeptAndSentAgain() throws {
        let (worker, messages) = try startGatedTasks(3)
        XCTAssertEqual(try client.command("REPLICAOF", "127.0.0.1", String(freePort())).text, "OK")
        openGate(3)
        XCTAssertTrue(
            eventually { worker.consumer.writeFailures["readonly", default: 0] >= 2 }, "\(worker.errors.get())")
        for m in messages { XCTAssertNil(try result(m.id)) }
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 3)
        XCTAssertEqual(try client.command("REPLICAOF", "NO", "ONE").text, "OK")
        try assertAllStoredAndAcked(messages, worker: worker)
        worker.stop()
    }

    /// The dataset being loaded (`DEBUG RELOAD` of a padded dataset, slowed per key):
    /// writes get LOADING until the load ends; then they land.
    func testLoadingWritesAreKeptAndSentAgain() throws {
        // A server of its own, whose dump (DEBUG RELOAD saves then loads) goes to a
        // scratch directory (`dir` cannot be changed at run time).
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("celeris-loading-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let port = freePort()
        let server = try Spawned(
            "/usr/bin/redis-server",
            [
                "--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir.path,
                "--enable-debug-command", "yes", "--loading-process-events-interval-bytes", "1024",
            ], name: "redis-loading-\(port)")
        defer { server.stop() }
        let endpoint = RedisEndpoint(host: "127.0.0.1", port: port)
        XCTAssertTrue(eventually { (try? RedisConnection(endpoint: endpoint).command("PING")) != nil }, server.log)
        client = try RedisConnection(endpoint: endpoint)
        let (worker, messages) = try startGatedTasks(3, endpoint: endpoint)
        _ = try client.command("DEBUG", "POPULATE", "40000", "celeris.padding", "16")
        _ = try client.command("CONFIG", "SET", "key-load-delay", "100")  // µs per key: about 4 s of loading
        let reloaded = DispatchSemaphore(value: 0)
        Thread {
            _ = try? RedisConnection(endpoint: endpoint, timeoutMs: 120_000).command("DEBUG", "RELOAD")
            reloaded.signal()
        }.start()
        XCTAssertTrue(try eventually { try self.client.info("persistence", "loading") == 1 }, "loading")
        openGate(3)
        XCTAssertTrue(
            eventually(timeout: 30) { worker.consumer.writeFailures["loading", default: 0] >= 1 },
            "\(worker.errors.get())")
        XCTAssertEqual(reloaded.wait(timeout: .now() + 60), .success, "DEBUG RELOAD returned")
        _ = try client.command("CONFIG", "SET", "key-load-delay", "0")
        try assertAllStoredAndAcked(messages, worker: worker)
        worker.stop()
    }

    /// A silent partition: the proxy between the worker and Redis stops forwarding
    /// without closing. The write in flight is lost when the connection's read times
    /// out; it is sent again on a new connection once the network is back.
    func testSilentPartitionLosesNoResult() throws {
        let proxy = try TCPProxy(upstream: redis.port)
        defer { proxy.stop() }
        let (worker, messages) = try startGatedTasks(
            3, endpoint: RedisEndpoint(host: "127.0.0.1", port: proxy.port))
        proxy.pause()
        openGate(3)
        XCTAssertTrue(
            eventually(timeout: 40) { worker.consumer.writeFailures["connection", default: 0] >= 1 },
            "\(worker.errors.get())")
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 3, "nothing acknowledged while partitioned")
        proxy.resume()
        try assertAllStoredAndAcked(messages, worker: worker)
        worker.stop()
    }

    /// A chord whose body's enqueue Redis refuses for good (its queue key holds a string:
    /// LPUSH gets WRONGTYPE, which would fail the same way again) fails as Celery's does:
    /// the body's result is a FAILURE with ChordError, the last header's delivery is
    /// acknowledged and the chord's keys are cleaned (done). Before, the join was retried
    /// forever with the delivery held.
    func testChordBodyRefusedForGoodFailsTheChord() throws {
        let worker = InProcessWorker(redis: redis)
        XCTAssertEqual(try client.command("SET", "bodyq", "not a list").text, "OK")
        let body = Signature("tsum", options: ["queue": "bodyq"])
        let (gid, bodyId) = try sendChord(
            Canvas.chord([.task(Signature("add", args: [1, 2])), .task(Signature("add", args: [3, 4]))], body))
        XCTAssertTrue(
            try eventually {
                try self.result(bodyId)?["status"] == "FAILURE" && self.client.command("HLEN", "unacked").integer == 0
            }, "\(worker.errors.get())")
        XCTAssertEqual(try result(bodyId)?["result"]?["exc_type"], "ChordError")
        let cause = try result(bodyId)?["result"]?["exc_message"]?[0]?.stringValue ?? ""
        XCTAssertTrue(cause.contains("WRONGTYPE"), cause)
        XCTAssertEqual(try client.command("GET", "\(Canvas.setPrefix)\(gid).c").text, "done")
        for suffix in [".j", ".s", ".d", ".t"] {
            XCTAssertEqual(try client.command("EXISTS", "\(Canvas.setPrefix)\(gid)\(suffix)").integer, 0, suffix)
        }
        XCTAssertEqual(try client.command("GET", "bodyq").text, "not a list")
        XCTAssertEqual(try client.command("ZCARD", "unacked_index").integer, 0)
        XCTAssertEqual(worker.consumer.chordJoinFailures.get(), 1, "not tried again")
        worker.stop()
    }

    /// A chord body whose enqueue Redis refuses for now (out of memory: the body carries
    /// both headers' 1 MiB results, and the limit lets the last header's result land but
    /// not the body) is not dropped: the chord is not marked done, the last header's
    /// delivery stays held, and the join is tried again until the body is queued.
    func testChordBodyIsQueuedBeforeTheChordIsDone() throws {
        let (worker, gid, bodyId) = try startChordOfBigHeaders()
        let done = "\(Canvas.setPrefix)\(gid).c"
        XCTAssertTrue(eventually { worker.consumer.chordJoinFailures.get() >= 2 }, "\(worker.errors.get())")
        XCTAssertEqual(try client.command("ZCARD", "\(Canvas.setPrefix)\(gid).j").integer, 2, "both counted")
        XCTAssertNotEqual(try client.command("GET", done).text, "done", "the chord is not done without its body")
        XCTAssertEqual(try client.command("LLEN", "bodyq").integer, 0)
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 1, "the last header's delivery is held")
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory", "0").text, "OK")
        XCTAssertTrue(
            try eventually {
                try self.client.command("LLEN", "bodyq").integer == 1
                    && self.client.command("HLEN", "unacked").integer == 0
            }, "\(worker.errors.get())")
        XCTAssertEqual(try client.command("GET", done).text, "done")
        let queued = try XCTUnwrap(try client.command("LINDEX", "bodyq", "0").bytes)
        XCTAssertEqual(try TaskMessage.decode(queued).id, bodyId)
        XCTAssertEqual(try client.command("ZCARD", "unacked_index").integer, 0)
        worker.stop()
    }

    /// Out of memory with 200 tasks queued: the worker claims nothing more while its
    /// writes are refused (their deliveries stay held). Before, each resent completion
    /// freed a slot as if written, and every retry claimed and ran more tasks, each held.
    /// At most one claim was in flight with the first refused write, so `unacked` stays
    /// within two windows; when the limit is lifted every task has its one result.
    func testOutOfMemoryClaimsNothingMoreWhileWritesAreRefused() throws {
        let gate = self.gate
        let started = self.started
        let worker = InProcessWorker(redis: redis, concurrency: 2, prefetch: 1) { r in
            r.register("wait_gate") { ctx in
                started.modify { $0 += 1 }
                gate.wait()
                return ctx.argument(0, "x") ?? .null
            }
        }
        let window = worker.consumer.capacity
        let messages = (0..<200).map { TaskMessage(task: "wait_gate", args: [.int(Int64($0))]) }
        try enqueue(messages)
        XCTAssertTrue(eventually { started.get() == 2 }, "two started")
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory-policy", "noeviction").text, "OK")
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory", "1").text, "OK")
        for _ in 0..<200 { gate.signal() }
        var most = 0
        XCTAssertTrue(
            try eventually(timeout: 20) {
                most = max(most, Int(try self.client.command("HLEN", "unacked").integer ?? 0))
                return worker.consumer.writeFailures["oom", default: 0] >= 8
            }, "\(worker.errors.get())")
        most = max(most, Int(try client.command("HLEN", "unacked").integer ?? 0))
        XCTAssertLessThanOrEqual(most, 2 * window, "held deliveries while writes are refused")
        XCTAssertLessThanOrEqual(started.get(), 2 * window)
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory", "0").text, "OK")
        XCTAssertTrue(
            try eventually(timeout: 60) {
                try self.client.command("HLEN", "unacked").integer == 0
                    && self.client.command("LLEN", "celery").integer == 0
                    && messages.allSatisfy { try self.result($0.id)?["status"] == "SUCCESS" }
            }, "\(worker.errors.get())")
        for m in messages { XCTAssertEqual(try result(m.id)?["result"], m.args[0]) }
        XCTAssertEqual(started.get(), 200, "each ran once")
        XCTAssertEqual(try client.command("ZCARD", "unacked_index").integer, 0)
        worker.stop()
    }

    /// OOM begins partway through a write: a task's 100 child tasks (`ctx.send`, plain
    /// LPUSHes of ~27 KB each) go out in one batch behind a refused write, and Redis takes
    /// the first ones until its limit (1 MB above its use) is reached. Only the refused
    /// ones are sent again: each child is queued exactly once. Before, the whole batch was
    /// sent again and the children that had landed were queued twice.
    func testChildTasksSentAsOutOfMemoryBeginsAreQueuedOnce() throws {
        let gate = self.gate
        let started = self.started
        let sentAll = LockedBox(false)
        let payload = String(repeating: "c", count: 20_000)
        let worker = InProcessWorker(redis: redis, concurrency: 1, prefetch: 1) { r in
            r.register("spawn") { ctx in
                started.modify { $0 += 1 }
                gate.wait()
                for i in 0..<100 { _ = ctx.send("child", args: [.int(Int64(i)), .string(payload)], queue: "other") }
                sentAll.set(true)
                return "spawned"
            }
        }
        let spawn = TaskMessage(task: "spawn")
        try enqueue([spawn])
        XCTAssertTrue(eventually { started.get() == 1 }, "started")
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory-policy", "noeviction").text, "OK")
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory", "1").text, "OK")
        openGate(1)
        XCTAssertTrue(eventually { sentAll.get() }, "the children were sent")
        let before = worker.consumer.writeFailures["oom", default: 0]
        // A batch sent after the last child was posted (every child in it) was refused.
        XCTAssertTrue(eventually { worker.consumer.writeFailures["oom", default: 0] >= before + 2 })
        XCTAssertEqual(try client.command("LLEN", "other").integer, 0)
        let used = try XCTUnwrap(try client.info("memory", "used_memory"))
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory", String(used + 1_000_000)).text, "OK")
        let partial = worker.consumer.writeFailures["oom", default: 0]
        XCTAssertTrue(
            try eventually {
                try self.client.command("LLEN", "other").integer ?? 0 > 0
                    && worker.consumer.writeFailures["oom", default: 0] > partial
            }, "some children landed, the rest refused")
        let landed = try XCTUnwrap(try client.command("LLEN", "other").integer)
        XCTAssertLessThan(landed, 100, "OOM began partway")
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory", "0").text, "OK")
        XCTAssertTrue(
            try eventually {
                try self.result(spawn.id)?["status"] == "SUCCESS" && self.client.command("HLEN", "unacked").integer == 0
                    && self.client.command("LLEN", "other").integer ?? 0 >= 100
            }, "\(worker.errors.get())")
        XCTAssertEqual(try client.command("LLEN", "other").integer, 100, "each child queued once")
        var indexes: Set<Int64> = []
        for raw in try client.command("LRANGE", "other", "0", "-1").elements ?? [] {
            indexes.insert(try XCTUnwrap(try TaskMessage.decode(try XCTUnwrap(raw.bytes)).args.first?.intValue))
        }
        XCTAssertEqual(indexes.count, 100)
        worker.stop()
    }

    /// While a refused write waits for its backoff (the worker's clock held), the loop
    /// waits for it: a lease renewal that fell due meanwhile (renewals are not added while
    /// writes are held) does not make every wait zero. Before, the loop spun until the
    /// clock passed the retry time.
    func testLoopWaitsOutAWriteBackoff() throws {
        let clock = ManualClock(CeleryTime.now())
        let (worker, messages) = try startGatedTasks(1, clock: clock)
        let m = messages[0]
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory-policy", "noeviction").text, "OK")
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory", "1").text, "OK")
        openGate(1)
        // Refusals until the backoff is at its longest (2 s), the clock moved past each retry time.
        for n in 1...7 {
            XCTAssertTrue(eventually { worker.consumer.writeFailures["oom", default: 0] >= n }, "refusal \(n)")
            if n < 7 { clock.advance(2.1) }
        }
        // Past the next lease renewal (the lease interval is 1 s at most), before the retry (2 s).
        clock.advance(1.5)
        assertLoopDoesNotSpin(worker)
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory", "0").text, "OK")
        clock.advance(2)
        XCTAssertTrue(
            try eventually {
                try self.result(m.id)?["status"] == "SUCCESS" && self.client.command("HLEN", "unacked").integer == 0
            }, "\(worker.errors.get())")
        worker.stop()
    }

    /// A chord join waits for its retry (Redis refused the body for now) when the
    /// connection goes (the proxy closes it and refuses new ones): with the worker's clock
    /// past the join's retry time, the loop waits for the reconnect pacing instead of
    /// spinning (the join, like lease renewals, runs only on a connection).
    func testLoopWaitsForTheReconnectWhileAChordJoinWaits() throws {
        let clock = ManualClock(CeleryTime.now())
        let proxy = try TCPProxy(upstream: redis.port)
        defer { proxy.stop() }
        let (worker, _, _) = try startChordOfBigHeaders(
            clock: clock, endpoint: RedisEndpoint(host: "127.0.0.1", port: proxy.port))
        XCTAssertTrue(eventually { worker.consumer.chordJoinFailures.get() >= 1 }, "\(worker.errors.get())")
        proxy.stop()
        clock.advance(2.5)  // the join's retry (or a renewal) finds the connection closed; reconnecting fails
        XCTAssertTrue(eventually { !worker.consumer.pipeline.isConnected.get() }, "disconnected")
        clock.advance(2.5)  // past the join's next retry and the next lease renewal; the reconnect fails again
        assertLoopDoesNotSpin(worker)
        XCTAssertEqual(try client.command("CONFIG", "SET", "maxmemory", "0").text, "OK")
        worker.consumer.stopNow()
    }

    /// A hard time limit abandons a thread it cannot stop; at `maxAbandonedThreads` of
    /// them the worker restarts warm: the last one is not replaced, nothing more starts,
    /// what it had claimed ahead goes back to the queue, and it stops with
    /// `stoppedForAbandonedThreads` set (the executable then exits with status 75).
    func testStuckThreadsBeyondTheBoundRestartTheWorkerWarm() throws {
        let clock = ManualClock(CeleryTime.now())
        let release = DispatchSemaphore(value: 0)
        let running = LockedBox(0)
        defer { for _ in 0..<3 { release.signal() } }
        let worker = InProcessWorker(
            redis: redis, concurrency: 1, prefetch: 2, clock: clock,
            register: { r in
                r.register("stuck") { _ in
                    running.modify { $0 += 1 }
                    release.wait()  // ignores every limit
                    return "late"
                }
            }, configure: { $0.maxAbandonedThreads = 2 })
        var stuck = (0..<3).map { _ in TaskMessage(task: "stuck") }
        for i in stuck.indices { stuck[i].timeLimit = (nil, 10) }
        try enqueue(stuck)
        XCTAssertTrue(eventually { running.get() == 1 }, "the first started")
        clock.advance(10.5)
        // The second runs in the replaced slot; the third is claimed ahead behind it.
        XCTAssertTrue(
            try eventually { try running.get() == 2 && self.client.command("LLEN", "celery").integer == 0 },
            "the second started, the third claimed")
        XCTAssertEqual(worker.consumer.pool.abandonedThreads, 1)
        XCTAssertFalse(worker.consumer.stoppedForAbandonedThreads.get())
        clock.advance(10.5)
        XCTAssertTrue(eventually { worker.consumer.stoppedForAbandonedThreads.get() }, "restarting")
        worker.stop()  // the loop has ended (it waits at most 10 s)
        XCTAssertEqual(worker.consumer.pool.abandonedThreads, 2)
        XCTAssertEqual(running.get(), 2, "nothing more started")
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 1, "the third went back to its queue")
        for m in stuck.prefix(2) {
            XCTAssertEqual(try result(m.id)?["result"]?["exc_type"], "TimeLimitExceeded")
        }
        XCTAssertNil(try result(stuck[2].id))
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
        XCTAssertEqual(try client.command("ZCARD", "unacked_index").integer, 0)
    }
}
