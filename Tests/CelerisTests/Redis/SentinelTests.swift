import FastCore
import Foundation
import Logging
import XCTest

/// Redis Sentinel (`sentinel://…?master_name=`): connections go to the master the sentinels
/// name, checked with `ROLE`, and follow a failover by themselves; the worker loses no task
/// that was replicated before its master died. Real redis-server and redis-sentinel processes
/// (`SentinelCluster`): a master, a replica, three sentinels.
final class SentinelTests: XCTestCase {
    var cluster: SentinelCluster!

    override func tearDown() {
        cluster?.stop()
        cluster = nil
    }

    // MARK: - finding the master

    /// A connection through the sentinels reaches the master, carrying the URL's db; after
    /// the master is killed, a new connection reaches the promoted replica, with the data
    /// replicated before the kill.
    func testConnectionFindsTheMasterAndFollowsAFailover() throws {
        cluster = try SentinelCluster()
        let endpoint = try cluster.endpoint(db: 3)
        let first = try RedisConnection(endpoint: endpoint)
        XCTAssertEqual(first.server.port, cluster.dataPorts[0])
        XCTAssertEqual(first.server.db, 3)
        XCTAssertNil(first.server.sentinel, "the server connected to is the master itself")
        try first.command("SET", "sentinel-key", "before")
        XCTAssertEqual(try first.command("WAIT", "1", "5000").integer, 1, "replicated")
        XCTAssertEqual(
            try cluster.client(port: cluster.dataPorts[0]).command("SELECT", "3").text, "OK", "db 3 on the master")

        let old = try cluster.killMaster()
        let killed = Date()
        // Connections are made again and again, as a worker's reconnect does, until one lands.
        var connected: RedisConnection?
        let reached = eventually(timeout: 30, interval: 0.05) {
            connected = try? RedisConnection(endpoint: endpoint, timeoutMs: 500)
            return connected != nil
        }
        let seconds = Date().timeIntervalSince(killed)
        let second = try XCTUnwrap(connected, "no connection through the sentinels after the kill")
        XCTAssertTrue(reached)
        XCTAssertNotEqual(second.server.port, old)
        XCTAssertEqual(second.server.port, cluster.dataPorts[1], "the replica was promoted")
        XCTAssertEqual(try second.command("GET", "sentinel-key").text, "before")
        XCTAssertEqual(try second.command("ROLE").elements?.first?.text, "master")
        try second.command("SET", "sentinel-key", "after")
        print("SENTINEL-FIGURE connection: master killed -> new connection through the sentinels in \(seconds) s")
    }

    /// The master's name the sentinels do not know, and sentinels nobody runs, are errors that say so.
    func testUnknownMasterAndUnreachableSentinelsAreClearErrors() throws {
        cluster = try SentinelCluster()
        let port = cluster.sentinelPorts[0]
        let unknown = try RedisEndpoint(url: "sentinel://127.0.0.1:\(port)?master_name=nosuch")
        let error = try redisError { _ = try RedisConnection(endpoint: unknown, timeoutMs: 1000) }
        XCTAssertTrue("\(error)".contains("no sentinel of [127.0.0.1:\(port)] knows master nosuch"), "\(error)")
        XCTAssertTrue("\(error)".contains("no such master"), "\(error)")

        let nobody = [freePort(), freePort()]
        let gone = try RedisEndpoint(
            url: nobody.map { "sentinel://127.0.0.1:\($0)" }.joined(separator: ";") + "?master_name=mymaster")
        let (servers, text) = gone.connectionCandidates(timeoutMs: 500)
        XCTAssertEqual(servers, [])
        let message = try XCTUnwrap(text)
        XCTAssertTrue(
            message.hasPrefix("no sentinel of [127.0.0.1:\(nobody[0]), 127.0.0.1:\(nobody[1])] knows master mymaster"),
            message)
        // Each sentinel's own failure is named.
        XCTAssertTrue(message.contains("127.0.0.1:\(nobody[0]): ") && message.contains("127.0.0.1:\(nobody[1]): "))
    }

    /// The sentinel that answered is asked first next time: a dead first sentinel costs one failed
    /// connect, once.
    func testTheSentinelThatAnsweredIsAskedFirst() throws {
        cluster = try SentinelCluster()
        let dead = freePort()
        let endpoint = try RedisEndpoint(
            url: "sentinel://127.0.0.1:\(dead);sentinel://127.0.0.1:\(cluster.sentinelPorts[1])?master_name=mymaster")
        let sentinel = try XCTUnwrap(endpoint.sentinel)
        XCTAssertEqual(endpoint.connectionCandidates(timeoutMs: 500).servers.map(\.port), [cluster.dataPorts[0]])
        XCTAssertEqual(
            sentinel.askingOrder.map(\.port), [cluster.sentinelPorts[1], dead],
            "the one that answered goes first")
    }

    /// Sentinels with `requirepass`: the URL's sentinel_password reaches them (and the URL's own
    /// password the master); a wrong or missing one is an error that names the sentinel password.
    func testSentinelAuthentication() throws {
        cluster = try SentinelCluster(sentinelPassword: "s3ntinel", dataPassword: "d4ta")
        let ok = try RedisConnection(endpoint: try cluster.endpoint())
        XCTAssertEqual(ok.server.port, cluster.dataPorts[0])
        XCTAssertEqual(ok.server.password, "d4ta", "the master's password is the URL's own")
        try ok.command("SET", "authed", "1")

        let ports = cluster.sentinelPorts.map { "sentinel://:d4ta@127.0.0.1:\($0)" }.joined(separator: ";")
        let wrong = try RedisEndpoint(url: ports + "?master_name=mymaster&sentinel_password=nope")
        let wrongError = try redisError { _ = try RedisConnection(endpoint: wrong, timeoutMs: 1000) }
        XCTAssertTrue("\(wrongError)".contains("sentinel authentication failed (sentinel_password)"), "\(wrongError)")
        XCTAssertTrue("\(wrongError)".contains("knows master mymaster"), "\(wrongError)")

        let missing = try RedisEndpoint(url: ports + "?master_name=mymaster")
        let missingError = try redisError { _ = try RedisConnection(endpoint: missing, timeoutMs: 1000) }
        XCTAssertTrue(
            "\(missingError)".contains("the sentinel needs a password (sentinel_password=…)"), "\(missingError)")

        // The sentinel password is not the master's: a wrong master password fails at the master.
        let badMaster = try RedisEndpoint(
            url: cluster.sentinelPorts.map { "sentinel://:wrong@127.0.0.1:\($0)" }.joined(separator: ";")
                + "?master_name=mymaster&sentinel_password=s3ntinel")
        let masterError = try redisError { _ = try RedisConnection(endpoint: badMaster, timeoutMs: 1000) }
        XCTAssertTrue(
            "\(masterError)".contains("authentication failed at redis://127.0.0.1:\(cluster.dataPorts[0])"),
            "\(masterError)")
    }

    // MARK: - the worker

    /// celeris-worker (2 slots, no step delay) on the cluster's sentinel:// URL; `waitConnected`:
    /// asserts it logs "connected to" within 20 s.
    private func startWorker(waitConnected: Bool, file: StaticString = #filePath, line: UInt = #line) throws
        -> Spawned
    {
        let worker = try Spawned(
            try TestPaths.executable("celeris-worker"), ["-b", cluster.url, "-c", "2", "--loglevel", "debug"],
            env: ["CELERIS_STEP_SECONDS": "0"], name: "sentinel-worker")
        if waitConnected {
            XCTAssertTrue(
                eventually(timeout: 20) { worker.log.contains("connected to") }, worker.log, file: file, line: line)
        }
        return worker
    }

    /// celeris-frontend on the cluster's sentinel:// URL and a free loopback port, asserted healthy
    /// (/health 200) within 20 s; the process and its port.
    private func startFrontend(file: StaticString = #filePath, line: UInt = #line) throws -> (Spawned, Int) {
        let port = freePort()
        let frontend = try Spawned(
            try TestPaths.executable("celeris-frontend"),
            ["-b", cluster.url, "--host", "127.0.0.1", "--port", "\(port)", "--loglevel", "debug"],
            name: "sentinel-frontend")
        XCTAssertTrue(
            eventually(timeout: 20) { (try? HTTPClient.request("GET", port: port, path: "/health").status) == 200 },
            frontend.log, file: file, line: line)
        return (frontend, port)
    }

    /// celeris-worker and celeris-frontend started on a sentinel:// URL find the master and run tasks.
    func testWorkerAndFrontendRunTasksThroughTheSentinels() throws {
        cluster = try SentinelCluster()
        let worker = try startWorker(waitConnected: true)
        defer { worker.stop() }
        let (frontend, port) = try startFrontend()
        defer { frontend.stop() }
        let id = try XCTUnwrap(
            try HTTPClient.request("POST", port: port, path: "/tasks", body: #"{"task": "add", "args": [2, 3]}"#)
                .json?["task_id"]?.stringValue, frontend.log)
        XCTAssertTrue(
            eventually(timeout: 20, interval: 0.05) {
                (try? HTTPClient.request("GET", port: port, path: "/status/\(id)").json?["state"]?.stringValue)
                    == "SUCCESS"
            }, worker.log + frontend.log)
        let master = try cluster.client(port: cluster.dataPorts[0])
        XCTAssertEqual(try master.result(id)?["result"], 5, "the result is on the master")
    }

    /// celeris-frontend and celeris-worker on a sentinel:// URL follow a kill -9 of the master
    /// with no operator action: tasks posted after the failover run on the new master.
    func testFrontendAndWorkerFollowAKilledMaster() throws {
        cluster = try SentinelCluster()
        let worker = try startWorker(waitConnected: true)
        defer { worker.stop() }
        let (frontend, port) = try startFrontend()
        defer { frontend.stop() }
        func post() -> String? {
            try? HTTPClient.request("POST", port: port, path: "/tasks", body: #"{"task": "add", "args": [20, 22]}"#)
                .json?["task_id"]?.stringValue
        }
        func succeeded(_ id: String) -> Bool {
            (try? HTTPClient.request("GET", port: port, path: "/status/\(id)").json?["state"]?.stringValue)
                == "SUCCESS"
        }
        let first = try XCTUnwrap(post(), frontend.log)
        XCTAssertTrue(eventually(timeout: 20, interval: 0.02) { succeeded(first) }, worker.log)

        let old = try cluster.killMaster()
        let killed = Date()
        // Posted as soon as the frontend takes one (each answer is the frontend's own: 200 or 503).
        var id: String?
        XCTAssertTrue(
            eventually(timeout: 60, interval: 0.05) {
                id = post()
                return id != nil
            }, frontend.log)
        let accepted = Date().timeIntervalSince(killed)
        let posted = try XCTUnwrap(id)
        XCTAssertTrue(eventually(timeout: 60, interval: 0.02) { succeeded(posted) }, worker.log + frontend.log)
        let done = Date().timeIntervalSince(killed)
        let new = try cluster.waitForNewMaster(otherThan: old, timeout: 10)
        XCTAssertEqual(try cluster.client(port: new).result(posted)?["result"], 42, "the result is on the new master")
        XCTAssertTrue(worker.isRunning && frontend.isRunning)
        print(
            "SENTINEL-FIGURE processes: master killed -> frontend accepts a task after \(accepted) s, "
                + "its result (worker on the new master) after \(done) s")
    }

    /// The Swift client (CelerisClient) on a sentinel:// URL sends a task and awaits its result.
    func testSwiftClientThroughTheSentinels() async throws {
        cluster = try SentinelCluster()
        let worker = try startWorker(waitConnected: false)
        defer { worker.stop() }
        let client = try CelerisClient(broker: cluster.url)
        let handle = try await client.send("add", args: [2, 3])
        let sum = try await handle.get(timeout: .seconds(20))
        XCTAssertEqual(sum, 5)

        // After a kill -9 of the master, the client's next send waits for the new one (within its
        // connectTimeout) and its result comes back from there.
        let old = try cluster.killMaster()
        let killed = Date()
        let again = try await client.send("add", args: [40, 2])
        let sent = Date().timeIntervalSince(killed)
        let answer = try await again.get(timeout: .seconds(30))
        XCTAssertEqual(answer, 42)
        let new = try cluster.waitForNewMaster(otherThan: old, timeout: 10)
        XCTAssertEqual(try cluster.client(port: new).result(again.id)?["result"], 42)
        print(
            "SENTINEL-FIGURE Swift client: master killed -> send returned after \(sent) s, "
                + "result after \(Date().timeIntervalSince(killed)) s")
        await client.close()
    }

    /// Python Celery configured for Sentinel as its users do (sentinel:// broker and backend,
    /// master_name and the sentinel password in the transport options) sends a task that
    /// celeris-worker, on the same sentinels, runs; Celery reads the result through its
    /// Sentinel backend.
    func testPythonCeleryOnTheSameSentinels() throws {
        cluster = try SentinelCluster(sentinelPassword: "s3ntinel")
        let worker = try startWorker(waitConnected: true)
        defer { worker.stop() }
        let urls = cluster.sentinelPorts.map { "sentinel://127.0.0.1:\($0)" }.joined(separator: ";")
        let out = try runPython("sentinel_probe.py", [urls, cluster.masterName, "s3ntinel"], timeout: 60)
        let line = try XCTUnwrap(out.split(separator: "\n").last { $0.hasPrefix("{") }, out)
        let json = try JSONParser.parse(Array(line.utf8))
        XCTAssertEqual(json["result"], 5, out)
        let id = try XCTUnwrap(json["id"]?.stringValue)
        XCTAssertEqual(try cluster.client(port: cluster.dataPorts[0]).result(id)?["result"], 5)
    }

    /// Data nodes on TLS only behind plain-TCP sentinels (`sentinel://…?ssl_ca_certs=`): the master
    /// they name is reached over TLS (its certificate checked against the address they gave), by a
    /// connection, by the worker and the frontend, and again after a kill -9.
    func testTLSMasterBehindTheSentinels() throws {
        let certs = try TLSFixtures()
        cluster = try SentinelCluster(tls: certs)
        let endpoint = try cluster.endpoint()
        XCTAssertNotNil(endpoint.tls)
        let direct = try RedisConnection(endpoint: endpoint)
        XCTAssertEqual(direct.server.port, cluster.dataPorts[0])
        XCTAssertNotNil(direct.server.tls, "the master is reached over TLS")
        try direct.command("SET", "over-tls", "1")

        let worker = try startWorker(waitConnected: true)
        defer { worker.stop() }
        let (frontend, port) = try startFrontend()
        defer { frontend.stop() }
        func runs() -> Bool {
            guard
                let id = try? HTTPClient.request(
                    "POST", port: port, path: "/tasks", body: #"{"task": "add", "args": [2, 3]}"#
                ).json?["task_id"]?.stringValue
            else { return false }
            return eventually(timeout: 20, interval: 0.05) {
                (try? HTTPClient.request("GET", port: port, path: "/status/\(id)").json?["state"]?.stringValue)
                    == "SUCCESS"
            }
        }
        XCTAssertTrue(runs(), worker.log + frontend.log)

        let old = try cluster.killMaster()
        let new = try cluster.waitForNewMaster(otherThan: old, timeout: 30)
        let after = try RedisConnection(endpoint: endpoint)
        XCTAssertEqual(after.server.port, new)
        XCTAssertEqual(try after.command("GET", "over-tls").text, "1")
        XCTAssertTrue(eventually(timeout: 30, interval: 0.1) { runs() }, worker.log + frontend.log)
    }

    /// `SENTINEL FAILOVER` with celeris-worker running: its remote-control listener subscribes on
    /// the new master (so a revoke sent there is heard) while the old one still says master, and
    /// its consumer moves there too: it follows the sentinels' announcement, not the demotion.
    func testWorkerLinksFollowTheAnnouncementNotTheDemotion() throws {
        cluster = try SentinelCluster()
        let worker = try startWorker(waitConnected: false)
        defer { worker.stop() }
        let pidbox = KombuEnvelope.fanoutChannel(db: 0, exchange: "celery.pidbox")
        func listeners(_ port: Int) -> Int64 {
            (try? cluster.client(port: port, timeoutMs: 500).command("PUBSUB", "NUMSUB", pidbox).elements?.last?
                .integer) ?? -1
        }
        let first = cluster.dataPorts[0]
        XCTAssertTrue(eventually(timeout: 20) { listeners(first) == 1 }, worker.log)
        let old = try cluster.failover()
        let new = try cluster.waitForNewMaster(otherThan: old, timeout: 30)
        // The listener moves while the old master still says master: both watched in one loop, so
        // a slow machine delays the checks but not their order.
        let order = cluster.movedBeforeDemotion(old: old, timeout: 40) { listeners(new) == 1 }
        let moved = try XCTUnwrap(order.moved, "the listener never moved: \(worker.log)")
        let demoted = try XCTUnwrap(order.demoted, "the old master never became a replica")
        XCTAssertLessThan(moved, demoted, "the listener moved only once the old master was demoted: \(worker.log)")
        XCTAssertTrue(
            worker.log.contains("the sentinels named 127.0.0.1:\(new) master instead of 127.0.0.1:\(old)"),
            "the consumer left the old master on the announcement: \(worker.log)")
    }

    /// The master is killed (SIGKILL) while an in-process worker drains tasks that were all
    /// replicated (WAIT) before: after the failover every task has its result on the new master;
    /// none is lost. Runs are counted per task: a task whose ack died with the old master runs
    /// again (reported, not a failure: delivery is at least once).
    func testMasterKilledMidDrainLosesNoReplicatedTask() throws {
        cluster = try SentinelCluster()
        let n = 3000
        let drain = try DrainUnderFailover(cluster: cluster, tasks: n)
        defer { drain.stop() }
        XCTAssertTrue(try drain.waitForResults(atLeast: n / 4, timeout: 30), "the drain did not start")
        let before = try drain.masterResults()
        let old = try cluster.killMaster()
        let killed = Date()
        let new = try cluster.waitForNewMaster(otherThan: old, timeout: 30)
        let promoted = Date().timeIntervalSince(killed)
        XCTAssertTrue(
            eventually(timeout: 30, interval: 0.02) { drain.connectedPort() == new },
            "the worker did not reconnect to the new master")
        let reconnected = Date().timeIntervalSince(killed)
        let master = try cluster.client(port: new)
        let complete = try eventually(timeout: 90, interval: 0.2) { try master.resultCount() == Int64(n) }
        let results = Int(try master.resultCount())
        let (ran, twice) = drain.runs(tasks: n)
        print(
            "SENTINEL-FIGURE kill -9: promoted in \(promoted) s, worker reconnected in \(reconnected) s; "
                + "\(n) tasks, \(before) done at the kill: \(n - results) lost, \(twice) ran more than once, "
                + "\(n - ran) never ran")
        XCTAssertLessThan(before, n / 2, "the master died mid-drain")
        XCTAssertTrue(complete, "results: \(results) of \(n)")
        XCTAssertEqual(n - results, 0, "lost")
        XCTAssertEqual(ran, n, "every task ran")
        XCTAssertTrue(
            try eventually(timeout: 30) {
                try master.command("LLEN", "celery").integer == 0 && master.command("HLEN", "unacked").integer == 0
            }, "nothing left queued or held")
    }

    /// `SENTINEL FAILOVER` while the worker drains: the old master becomes a replica, the worker
    /// follows to the new one, every task gets its result there.
    func testGracefulFailoverWhileTheWorkerDrains() throws {
        cluster = try SentinelCluster()
        let n = 3000
        // Slower tasks (10 ms, 4 at a time: ~7 s of drain) so the drain goes on well past the failover.
        let drain = try DrainUnderFailover(cluster: cluster, tasks: n, taskMs: 10)
        defer { drain.stop() }
        XCTAssertTrue(try drain.waitForResults(atLeast: n / 10, timeout: 30), "the drain did not start")
        let old = try cluster.failover()
        let started = Date()
        let new = try cluster.waitForNewMaster(otherThan: old, timeout: 30)
        let promoted = Date().timeIntervalSince(started)
        // It followed the sentinels' announcement, not the demotion of the old master (seconds later,
        // when the sentinels reconfigure it and close its clients): both watched in one loop.
        var moved = 0.0
        let order = cluster.movedBeforeDemotion(old: old, timeout: 40) {
            guard drain.connectedPort() == new else { return false }
            moved = Date().timeIntervalSince(started)
            return true
        }
        let movedRound = try XCTUnwrap(order.moved, "the worker did not move to the new master")
        let demotedRound = try XCTUnwrap(order.demoted, "the old master never became a replica")
        XCTAssertLessThan(movedRound, demotedRound, "the worker moved only once the old master was demoted")
        let master = try cluster.client(port: new)
        let complete = try eventually(timeout: 90, interval: 0.2) { try master.resultCount() == Int64(n) }
        let results = Int(try master.resultCount())
        let (ran, twice) = drain.runs(tasks: n)
        print(
            "SENTINEL-FIGURE SENTINEL FAILOVER: promoted in \(promoted) s, worker on the new master after \(moved) s; "
                + "\(n) tasks: \(n - results) lost, \(twice) ran more than once; write failures \(drain.consumer.writeFailures)"
        )
        XCTAssertTrue(complete, "results: \(results) of \(n)")
        XCTAssertEqual(ran, n, "every task ran")
    }

    /// The master is made a replica behind the sentinels' back (REPLICAOF, as a failover done by
    /// hand would): the worker's next claim or write is refused READONLY, which it takes as a lost
    /// link, not a task failure; its reconnects find a replica (ROLE) until the sentinels fail
    /// over to the one master left, and every task gets its result there.
    func testReadOnlyMasterIsALostLink() throws {
        cluster = try SentinelCluster()
        let n = 3000
        let drain = try DrainUnderFailover(cluster: cluster, tasks: n, taskMs: 5)
        defer { drain.stop() }
        XCTAssertTrue(try drain.waitForResults(atLeast: n / 10, timeout: 30), "the drain did not start")
        let (old, replica) = (cluster.dataPorts[0], cluster.dataPorts[1])
        XCTAssertEqual(try cluster.client(port: replica).command("REPLICAOF", "NO", "ONE").text, "OK")
        XCTAssertEqual(
            try cluster.client(port: old).command("REPLICAOF", "127.0.0.1", "\(replica)").text, "OK")
        let demoted = Date()
        XCTAssertTrue(
            eventually(timeout: 20) { drain.lines.get().contains { $0.hasPrefix("Redis is read-only now (READONLY") } },
            "\(drain.lines.get().suffix(20))")
        let new = try cluster.waitForNewMaster(otherThan: old, timeout: 60)
        XCTAssertEqual(new, replica)
        XCTAssertTrue(
            eventually(timeout: 30, interval: 0.02) { drain.connectedPort() == new },
            "the worker did not reconnect to the master: \(drain.lines.get().suffix(20))")
        let moved = Date().timeIntervalSince(demoted)
        let master = try cluster.client(port: new)
        let complete = try eventually(timeout: 90, interval: 0.2) { try master.resultCount() == Int64(n) }
        let results = Int(try master.resultCount())
        let (ran, twice) = drain.runs(tasks: n)
        // Refused (READONLY), not failed: no task's result says FAILURE.
        let failures = try master.command(
            "EVAL",
            "local n = 0 for _, k in ipairs(redis.call('KEYS', 'celery-task-meta-*')) do "
                + "if string.find(redis.call('GET', k), 'FAILURE') then n = n + 1 end end return n", "0"
        ).integer
        print(
            "SENTINEL-FIGURE READONLY: worker on the promoted master \(moved) s after REPLICAOF; "
                + "\(n) tasks: \(n - results) lost, \(twice) ran more than once; reconnects refused by ROLE: "
                + "\(drain.lines.get().count { $0.contains("says ROLE slave") })")
        XCTAssertTrue(complete, "results: \(results) of \(n)")
        XCTAssertEqual(ran, n, "every task ran")
        XCTAssertEqual(failures, 0)
    }
}

/// The `RedisError` `body` threw; a failure when it threw nothing or something else.
private func redisError(_ body: () throws -> Void) throws -> RedisError {
    do {
        try body()
    } catch let error as RedisError {
        return error
    }
    throw TestFailure("no RedisError thrown")
}

/// An in-process worker (`Consumer`) draining `tasks` tasks enqueued on the cluster's master and
/// replicated (WAIT) before it starts; each run of a task counted by its index.
final class DrainUnderFailover {
    let consumer: Consumer
    private let counts: LockedBox<[Int: Int]>
    private let stopped = DispatchSemaphore(value: 0)
    private let cluster: SentinelCluster
    /// The worker's warnings and errors.
    let lines: LockedBox<[String]>

    init(cluster: SentinelCluster, tasks n: Int, taskMs: UInt32 = 2) throws {
        self.cluster = cluster
        let master = try cluster.client(port: cluster.dataPorts[0])
        var producer = TaskProducer()
        let messages = (0..<n).map { TaskMessage(task: "count", args: [.int(Int64($0))]) }
        for chunk in stride(from: 0, to: n, by: 500) {
            let commands = messages[chunk..<min(n, chunk + 500)].flatMap { producer.sendCommands(for: $0) }
            for reply in try master.pipeline(commands) where reply.errorMessage != nil {
                throw TestFailure("enqueue: \(reply)")
            }
        }
        guard try master.command("WAIT", "1", "10000").integer == 1 else {
            throw TestFailure("the tasks were not replicated")
        }
        let counts = LockedBox<[Int: Int]>([:])
        self.counts = counts
        var registry = TaskRegistry()
        registry.register("count") { ctx in
            let i = ctx.argument(0, "i")?.intValue ?? -1
            counts.modify { $0[Int(i), default: 0] += 1 }
            usleep(taskMs * 1000)
            return ctx.argument(0, "i") ?? .null
        }
        let lines = LockedBox<[String]>([])
        self.lines = lines
        var logger = Logger(label: "sentinel-drain") { _ in WarningRecorder(lines: lines) }
        logger.logLevel = .warning
        consumer = Consumer(
            configuration: WorkerConfiguration(
                endpoint: try cluster.endpoint(), concurrency: 4, hostname: "celeris@sentinel-\(UUID().uuidString)",
                stepSeconds: 0, visibilityTimeout: 4),
            registry: registry, logger: logger)
        let consumer = self.consumer
        let stopped = self.stopped
        Thread {
            consumer.run()
            stopped.signal()
        }.start()
    }

    /// Wait until the master the sentinels name holds at least `count` results.
    func waitForResults(atLeast count: Int, timeout: Double) throws -> Bool {
        eventually(timeout: timeout, interval: 0.02) {
            guard let port = cluster.sentinelMaster(), let r = try? cluster.client(port: port, timeoutMs: 500) else {
                return false
            }
            return ((try? r.resultCount()) ?? 0) >= Int64(count)
        }
    }

    /// How many results the master the sentinels name holds now.
    func masterResults() throws -> Int {
        guard let port = cluster.sentinelMaster() else { throw TestFailure("no master named") }
        return Int(try cluster.client(port: port).resultCount())
    }

    /// The port of the server the worker is connected to now (nil while it is not).
    func connectedPort() -> Int? { consumer.server?.port }

    /// How many of tasks 0..<n ran at least once, and how many more than once.
    func runs(tasks n: Int) -> (ran: Int, twice: Int) {
        let c = counts.get()
        return ((0..<n).count { (c[$0] ?? 0) > 0 }, (0..<n).count { (c[$0] ?? 0) > 1 })
    }

    func stop() {
        consumer.stop()
        _ = stopped.wait(timeout: .now() + 15)
    }
}

/// Keeps a logger's messages.
private struct WarningRecorder: LogHandler {
    let lines: LockedBox<[String]>
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .warning
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) { lines.modify { $0.append(event.message.description) } }
}
