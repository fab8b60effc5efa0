import FastCore
import Foundation
import XCTest

/// `/ws` subscriptions end to end: a real celeris-frontend (two loops), real workers (Python
/// Celery and Celeris), real Redis. Every state a subscribed task goes through reaches its
/// subscriber in order, once, the final one included, however the timing falls.
final class LiveUpdateTests: FrontendTestCase {
    override var frontendFlags: [String] {
        // Readers here keep up; large bounds so that no progress is dropped for a slow read.
        ["--loops", "2", "--ws-soft-limit-bytes", "16777216", "--ws-hard-limit-bytes", "67108864"]
    }

    /// POST /tasks and its task id.
    func submit(_ body: String) throws -> String {
        let r = try HTTPClient.request(
            "POST", port: port, path: "/tasks", body: body, headers: ["Content-Type": "application/json"])
        return try XCTUnwrap(r.json?["task_id"]?.stringValue, "\(r.status) \(r.body)")
    }

    /// `celeris_frontend_watched_tasks`, summed over the loops.
    func watchedTasks() throws -> Double {
        try Prometheus.scrape(port: port).filter { $0.key.hasPrefix("celeris_frontend_watched_tasks") }.values.reduce(
            0, +)
    }

    func testAPythonCeleryTasksStatesReachTheSubscriberInOrderOnce() throws {
        let id = try submit(#"{"task": "create_task", "args": [3]}"#)
        let ws = try LiveSocket(port: port)
        try ws.subscribe([id])
        XCTAssertTrue(eventually { ws.states(of: id) == ["PENDING"] }, "\(ws.states(of: id))")
        let worker = try PythonWorker.spawn(redis: redis, env: ["FIXTURE_STEP_SECONDS": "0.05"])
        defer { worker.stop() }
        XCTAssertTrue(eventually(timeout: 30) { ws.states(of: id).last == "SUCCESS" }, worker.log)
        let messages = ws.messages(of: id)
        XCTAssertEqual(ws.states(of: id), ["PENDING", "PROGRESS", "PROGRESS", "PROGRESS", "SUCCESS"])
        XCTAssertEqual(messages.compactMap { $0["meta"]?["progress"]?.intValue }, [0, 1, 2])
        XCTAssertEqual(messages.last?["result"]?["status"], "Task completed")
    }

    func testACelerisAddReachesTheSubscriberOnce() throws {
        let id = try submit(#"{"task": "add", "args": [2, 3]}"#)
        let ws = try LiveSocket(port: port)
        try ws.subscribe([id])
        XCTAssertTrue(eventually { ws.states(of: id) == ["PENDING"] })
        let worker = try CelerisProcess.worker(redis: redis)
        defer { worker.stop() }
        XCTAssertTrue(eventually(timeout: 20) { ws.states(of: id).last == "SUCCESS" }, worker.log)
        XCTAssertEqual(ws.states(of: id), ["PENDING", "SUCCESS"])
        XCTAssertEqual(ws.messages(of: id).last?["result"], 5)
    }

    /// A task revoked while its eta is ahead, and one whose `expires` has passed: the worker
    /// stores REVOKED for both, and the subscriber gets it.
    func testRevokedAndExpiredTasksReachTheSubscriberAsRevoked() throws {
        let worker = try CelerisProcess.worker(redis: redis)
        defer { worker.stop() }
        var revoked = TaskMessage(task: "add", args: [1, 1])
        revoked.eta = CeleryTime.isoformat(CeleryTime.now() + 5)
        var expired = TaskMessage(task: "add", args: [1, 2])
        expired.expires = CeleryTime.isoformat(CeleryTime.now() - 60)
        let ws = try LiveSocket(port: port)
        try ws.subscribe([revoked.id, expired.id])
        XCTAssertTrue(
            eventually { ws.states(of: revoked.id) == ["PENDING"] && ws.states(of: expired.id) == ["PENDING"] })
        try enqueue([revoked, expired])
        // The broadcast reaches only workers listening by then: sent again until the task is REVOKED.
        XCTAssertTrue(
            try eventually(timeout: 20, interval: 0.2) {
                _ = try client.pipeline([
                    ControlBroadcast.revoke(revoked.id, terminate: false, db: 0, clock: 1, now: CeleryTime.now())
                ])
                return ws.states(of: revoked.id).last == "REVOKED" && ws.states(of: expired.id).last == "REVOKED"
            }, "\(ws.states(of: revoked.id)) \(ws.states(of: expired.id))\n\(worker.log)")
        XCTAssertEqual(ws.states(of: revoked.id), ["PENDING", "REVOKED"])
        XCTAssertEqual(ws.states(of: expired.id), ["PENDING", "REVOKED"])
        XCTAssertEqual(ws.messages(of: expired.id).last?["meta"]?["exc_type"], "TaskRevokedError")
    }

    /// 1,000 tasks finish (MULTI SETEX PUBLISH EXEC, as Celery's backend stores) right after
    /// their chunk's subscribe is sent: each is reported SUCCESS exactly once, nothing after it,
    /// and at most a PENDING before it. Where each write lands against its subscription's set-up
    /// is not controlled from here (ResultWatchTests drives that window through `beforeRead`).
    func testTasksFinishingRightAfterTheirSubscribeAreReportedOnce() throws {
        let ids = (0..<1000).map { _ in TaskMessage.newId() }
        let ws = try LiveSocket(port: port)
        // Each chunk's subscribe goes out, and at once its tasks finish.
        for chunk in stride(from: 0, to: ids.count, by: 100) {
            let mine = Array(ids[chunk..<chunk + 100])
            try ws.subscribe(mine)
            var commands: [[String]] = []
            for id in mine {
                let rec = ResultRecord(taskId: id, state: .success, result: .string(id), dateDone: 1).serialized()
                commands += [
                    ["MULTI"], ["SETEX", ResultRecord.key(id), "600", rec], ["PUBLISH", ResultRecord.key(id), rec],
                    ["EXEC"],
                ]
            }
            _ = try client.pipeline(commands)
        }
        XCTAssertTrue(
            eventually(timeout: 30) { ws.count(state: "SUCCESS") == ids.count }, "\(ws.count(state: "SUCCESS"))")
        var sawPending = 0
        for id in ids {
            let states = ws.states(of: id)
            XCTAssertTrue(states == ["SUCCESS"] || states == ["PENDING", "SUCCESS"], "\(id): \(states)")
            if states.first == "PENDING" { sawPending += 1 }
            XCTAssertEqual(ws.messages(of: id).last?["result"]?.stringValue, id)
        }
        XCTAssertNil(ws.readError)
        print("LiveUpdate: \(sawPending) of \(ids.count) subscribed before their task finished")
    }

    /// 10 clients × 1,000 subscriptions; then all 10,000 tasks finish in one pipelined burst:
    /// each client gets each of its tasks' SUCCESS once.
    func testTenThousandSubscribedTasksFinishingInABurstEachReachTheirSubscriberOnce() throws {
        let clients = try (0..<10).map { _ in try LiveSocket(port: port) }
        let ids = clients.map { _ in (0..<1000).map { _ in TaskMessage.newId() } }
        for (ws, mine) in zip(clients, ids) { try ws.subscribe(mine) }
        XCTAssertTrue(
            eventually(timeout: 60) { clients.allSatisfy { $0.count(state: "PENDING") == 1000 } },
            "\(clients.map { $0.count(state: "PENDING") })")
        XCTAssertTrue(
            try eventually(timeout: 10, interval: 0.2) { try self.watchedTasks() == 10_000 },
            "watched tasks: \((try? watchedTasks()) ?? -1)")
        var commands: [[String]] = []
        for id in ids.joined() {
            let rec = ResultRecord(taskId: id, state: .success, result: .string(id), dateDone: 1).serialized()
            commands += [["SETEX", ResultRecord.key(id), "600", rec], ["PUBLISH", ResultRecord.key(id), rec]]
        }
        let start = Date()
        for batch in stride(from: 0, to: commands.count, by: 2000) {
            _ = try client.pipeline(Array(commands[batch..<min(batch + 2000, commands.count)]))
        }
        XCTAssertTrue(
            eventually(timeout: 60) { clients.allSatisfy { $0.count(state: "SUCCESS") == 1000 } },
            "\(clients.map { $0.count(state: "SUCCESS") })")
        let seconds = Date().timeIntervalSince(start)
        for (ws, mine) in zip(clients, ids) {
            XCTAssertEqual(ws.count(state: "SUCCESS"), 1000)
            XCTAssertEqual(Set(ws.tasks(state: "SUCCESS")), Set(mine), "each client got its own tasks' final states")
            XCTAssertEqual(ws.tasks(state: "SUCCESS").count, Set(ws.tasks(state: "SUCCESS")).count, "once each")
        }
        print("LiveUpdate burst: 10,000 final states to 10 clients in \(String(format: "%.2f", seconds)) s")
        XCTAssertTrue(
            try eventually(timeout: 10, interval: 0.2) { try self.watchedTasks() == 0 }, "final states end the watches")
    }

    /// A frontend with the firehose subscribes task_status and hands its messages to a client
    /// with no subscriptions; with --no-firehose nobody receives a PUBLISH on task_status and a
    /// client with no subscriptions gets nothing.
    func testNoFirehose() throws {
        let listening = try LiveSocket(port: port)
        let event = #"{"task_id": "fh-1", "state": "PROGRESS"}"#
        XCTAssertTrue(
            try eventually(timeout: 10, interval: 0.1) {
                try client.command("PUBLISH", "task_status", event).integer ?? 0 >= 1
            }, "the default frontend receives task_status")
        XCTAssertTrue(eventually { listening.states(of: "fh-1").first == "PROGRESS" }, "\(listening.all())")
        frontend.stop()
        port = freePort()
        frontend = try CelerisProcess.frontend(redis: redis, port: port, extra: ["--no-firehose"])
        let quiet = try LiveSocket(port: port)
        let subscribed = try LiveSocket(port: port)
        try subscribed.subscribe(["t1"])
        XCTAssertTrue(eventually { subscribed.states(of: "t1") == ["PENDING"] })
        XCTAssertEqual(
            try client.command("PUBSUB", "NUMSUB", "task_status").elements?.last?.integer, 0,
            "the frontend does not even subscribe task_status")
        let rec = ResultRecord(taskId: "t1", state: .success, result: 1, dateDone: 1).serialized()
        _ = try client.pipeline([
            ["SETEX", ResultRecord.key("t1"), "600", rec], ["PUBLISH", ResultRecord.key("t1"), rec],
        ])
        XCTAssertTrue(eventually { subscribed.states(of: "t1") == ["PENDING", "SUCCESS"] })
        XCTAssertEqual(
            try client.command("PUBLISH", "task_status", event).integer, 0, "no receiver of task_status")
        try quiet.subscribe(["sync"])  // its snapshot comes after anything queued before it
        XCTAssertTrue(eventually { quiet.states(of: "sync") == ["PENDING"] })
        XCTAssertEqual(quiet.all().count, 1, "nothing but its own subscription")
    }
}

/// A `/ws` client whose messages a thread of its own reads (answering pings). Its socket
/// waits up to `readTimeout` s for a frame (the hub pings every 20 s), and the error that
/// ended the reader is kept (`readError`).
final class LiveSocket: @unchecked Sendable {
    let socket: RawSocket
    private let received = LockedBox<[JSON]>([])
    private let failure = LockedBox<String?>(nil)

    init(port: Int, readTimeout: Double = 120) throws {
        socket = try RawSocket(port: port, timeout: readTimeout)
        try socket.send(
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        let r = try socket.readResponse()
        guard r.status == 101 else { throw TestFailure("handshake failed: \(r.statusLine)") }
        let (socket, received, failure) = (Unchecked(socket), received, failure)
        Thread {
            do {
                while true {
                    let m = try WebSocketFanOutTests.nextText(socket.value)
                    received.modify { $0.append(m) }
                }
            } catch {
                failure.set("\(error)")
            }
        }.start()
    }

    /// Why the reader stopped (nil: still reading).
    var readError: String? { failure.get() }

    /// Subscribe to `ids`, 100 a message.
    func subscribe(_ ids: [String]) throws {
        for start in stride(from: 0, to: ids.count, by: 100) {
            let list = ids[start..<min(start + 100, ids.count)].map { JSON.string($0) }
            try socket.send(
                WSFrame.make(opcode: 0x1, payload: Array(JSON.object([("subscribe", .array(list))]).serialized().utf8)))
        }
    }

    func all() -> [JSON] { received.get() }
    func messages(of id: String) -> [JSON] { received.get().filter { $0["task_id"]?.stringValue == id } }
    func states(of id: String) -> [String] { messages(of: id).compactMap { $0["state"]?.stringValue } }
    func tasks(state: String) -> [String] {
        received.get().filter { $0["state"]?.stringValue == state }.compactMap { $0["task_id"]?.stringValue }
    }
    func count(state: String) -> Int { received.get().reduce(0) { $0 + ($1["state"]?.stringValue == state ? 1 : 0) } }
}
