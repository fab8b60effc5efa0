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
        _ count: Int, endpoint: RedisEndpoint? = nil, register: (inout TaskRegistry) -> Void = { _ in }
    ) throws -> (InProcessWorker, [TaskMessage]) {
        let gate = self.gate
        let started = self.started
        let worker = InProcessWorker(redis: redis, concurrency: count, prefetch: 1, endpoint: endpoint) { r in
            r.register("wait_gate") { ctx in
                started.modify { $0 += 1 }
                gate.wait()
                return ctx.argument(0, "x") ?? .null
            }
            register(&r)
        }
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

    /// A chord body whose enqueue fails (its queue key holds a string: LPUSH gets
    /// WRONGTYPE) is not dropped: the chord is not marked done, the last header's delivery
    /// stays held, and the join is tried again until the body is queued.
    func testChordBodyIsQueuedBeforeTheChordIsDone() throws {
        let worker = InProcessWorker(redis: redis)
        XCTAssertEqual(try client.command("SET", "bodyq", "not a list").text, "OK")
        let body = Signature("tsum", options: ["queue": "bodyq"])
        let chord = Canvas.chord(
            [.task(Signature("add", args: [1, 2])), .task(Signature("add", args: [3, 4]))], body)
        let (commands, bodyId) = chord.sendCommands()
        for reply in try client.pipeline(commands) { XCTAssertNil(reply.errorMessage) }
        let gid = try XCTUnwrap(
            try client.command("KEYS", "\(Canvas.setPrefix)*.s").elements?.first?.text?.dropFirst(
                Canvas.setPrefix.count
            ).dropLast(2))
        let done = "\(Canvas.setPrefix)\(gid).c"
        XCTAssertTrue(eventually { worker.consumer.chordJoinFailures.get() >= 2 }, "\(worker.errors.get())")
        XCTAssertNotEqual(try client.command("GET", done).text, "done", "the chord is not done without its body")
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 1, "the last header's delivery is held")
        XCTAssertEqual(try client.command("DEL", "bodyq").integer, 1)
        XCTAssertTrue(
            try eventually {
                try self.client.command("LLEN", "bodyq").integer == 1
                    && self.client.command("HLEN", "unacked").integer == 0
            }, "\(worker.errors.get())")
        XCTAssertEqual(try client.command("GET", done).text, "done")
        let queued = try XCTUnwrap(try client.command("LINDEX", "bodyq", "0").bytes)
        let sent = try TaskMessage.decode(queued)
        XCTAssertEqual(sent.id, bodyId)
        XCTAssertEqual(sent.args, [[3, 7]])
        XCTAssertEqual(try client.command("ZCARD", "unacked_index").integer, 0)
        worker.stop()
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
