import FastCore
import Foundation
import XCTest

/// `CelerisClient` against real redis-servers, Celeris workers and Python Celery 5.7
/// (workers and clients on the other side of what it sends and awaits).
final class ClientTests: XCTestCase {
    private var redis: RedisServer!
    private var client: CelerisClient!

    override func setUpWithError() throws {
        redis = try RedisServer()
        client = try CelerisClient(broker: redis.url)
    }

    override func tearDown() async throws {
        await client.close()
        redis.stop()
    }

    private struct AddArguments: Codable, Sendable {
        var x: Int
        var y: Int
    }

    /// (1) Swift client → Python Celery worker → the result awaited in Swift, by name and typed.
    func testSwiftClientAwaitsPythonWorker() async throws {
        let python = try PythonWorker.spawn(redis: redis)
        defer { python.stop() }
        let sum = try await client.send("add", args: [2, 3]).get(timeout: .seconds(30))
        XCTAssertEqual(sum, 5)
        let add = TaskReference<AddArguments, Int>("add")
        let typed: Int = try await client.send(add, AddArguments(x: 40, y: 2)).get(timeout: .seconds(30))
        XCTAssertEqual(typed, 42)
        // A failure comes back as the Python exception's type and message.
        let e = await thrown { try await client.send("add", args: [1, "a"]).get(timeout: .seconds(30)) }
        XCTAssertEqual((e as? TaskFailure)?.type, "TypeError", "\(String(describing: e))")
    }

    /// (2) A Python client's `AsyncResult(id).get()` awaits what the Swift client sent to a Celeris worker.
    func testPythonClientAwaitsWhatSwiftSent() async throws {
        let worker = InProcessWorker(redis: redis)
        defer { worker.stop() }
        let handle = try await client.send("add", args: [20, 22])
        let out = try resultLine(try runPython("client_probe.py", ["await", redis.url, handle.id, "20"]))
        XCTAssertEqual(out, ["result": 42])
        let again = try await handle.get(timeout: .seconds(5))
        XCTAssertEqual(again, 42)
    }

    /// (3) `states`: PENDING while no worker runs it, then every PROGRESS in order, then SUCCESS, then the end.
    func testProgressStatesArriveInOrder() async throws {
        let handle = try await client.send("create_task", args: [5])
        var states = handle.states.makeAsyncIterator()
        let first = try await states.next()
        XCTAssertEqual(first?.state, "PENDING")
        // Subscribed and read: only now is there a worker (steps of 0 s: updates as fast as it can).
        let worker = InProcessWorker(redis: redis)
        defer { worker.stop() }
        var seen: [TaskStatus] = []
        while let s = try await states.next() { seen.append(s) }
        XCTAssertEqual(seen.map(\.state), ["PROGRESS", "PROGRESS", "PROGRESS", "PROGRESS", "PROGRESS", "SUCCESS"])
        XCTAssertEqual(seen.dropLast().map { $0.result["progress"] }, [0, 1, 2, 3, 4])
        XCTAssertEqual(seen.last?.result, ["status": "Task completed"])
    }

    /// (4) Every option lands in the message as Python's `apply_async` puts it (ids and times aside).
    func testOptionsAreWrittenAsCeleryWritesThem() async throws {
        let db = try redis.client()
        func take(_ queue: String) throws -> JSON {
            for key in QueueKeys.listKeys(queue: queue) {
                if let raw = try db.command("RPOP", key).bytes { return try JSONParser.parse(raw) }
            }
            throw TestFailure("nothing queued on \(queue)")
        }
        let swiftId = TaskMessage.newId()
        let options = SendOptions(
            queue: "q4", priority: 5, countdown: 30, expires: .after(60), taskId: swiftId,
            link: [Signature("add", args: [10])])
        _ = try await client.send("add", args: [2, 3], options: options)
        let swift = try take("q4")
        let pyId = TaskMessage.newId()
        let opts =
            #"{"queue": "q4", "priority": 5, "countdown": 30, "expires": 60, "task_id": "\#(pyId)", "link": true}"#
        _ = try runPython("client_probe.py", ["send", redis.url, opts])
        let python = try take("q4")
        try assertSameMessage(swift, python, swiftId: swiftId, pythonId: pyId)

        // eta as a date, no link, ignore_result, and the routing key naming the queue.
        let eta = Date().addingTimeInterval(120)
        let id2 = TaskMessage.newId()
        _ = try await client.send(
            "add", args: [2, 3],
            options: SendOptions(routingKey: "q5", eta: eta, ignoreResult: true, taskId: id2))
        let swift2 = try take("q5")
        let py2 = TaskMessage.newId()
        let opts2 =
            #"{"queue": "q5", "eta": \#(eta.timeIntervalSince1970), "ignore_result": true, "task_id": "\#(py2)"}"#
        _ = try runPython("client_probe.py", ["send", redis.url, opts2])
        try assertSameMessage(swift2, try take("q5"), swiftId: id2, pythonId: py2)
    }

    /// Field by field: the envelope's properties, headers and body, ids and times compared for what they are.
    private func assertSameMessage(_ swift: JSON, _ python: JSON, swiftId: String, pythonId: String) throws {
        XCTAssertEqual(Set(swift.objectPairs?.map(\.key) ?? []), Set(python.objectPairs?.map(\.key) ?? []))
        for key in ["content-encoding", "content-type"] { XCTAssertEqual(swift[key], python[key], key) }
        let sp = try XCTUnwrap(swift["properties"]), pp = try XCTUnwrap(python["properties"])
        XCTAssertEqual(Set(sp.objectPairs?.map(\.key) ?? []), Set(pp.objectPairs?.map(\.key) ?? []))
        for key in ["delivery_mode", "delivery_info", "priority", "body_encoding"] {
            XCTAssertEqual(sp[key], pp[key], "properties.\(key)")
        }
        XCTAssertEqual(sp["correlation_id"]?.stringValue, swiftId)
        XCTAssertEqual(pp["correlation_id"]?.stringValue, pythonId)
        let sh = try XCTUnwrap(swift["headers"]), ph = try XCTUnwrap(python["headers"])
        XCTAssertEqual(sh.objectPairs?.map(\.key), ph.objectPairs?.map(\.key), "header keys in Celery's order")
        for (key, value) in ph.objectPairs ?? [] {
            switch key {
            case "id", "root_id":
                XCTAssertEqual(sh[key]?.stringValue, swiftId, key)
                XCTAssertEqual(value.stringValue, pythonId, key)
            case "eta", "expires":
                // Times: both set or both null; when set, within a few seconds of each other.
                XCTAssertEqual(sh[key]?.isNull, value.isNull, key)
                let s = sh[key]?.stringValue.flatMap(CeleryTime.parse) ?? 0
                let p = value.stringValue.flatMap(CeleryTime.parse) ?? 0
                XCTAssertLessThan(abs(s - p), 10, "\(key): \(String(describing: sh[key])) vs \(value)")
                XCTAssertEqual(sh[key]?.stringValue?.hasSuffix("+00:00"), value.stringValue?.hasSuffix("+00:00"), key)
            case "origin":
                XCTAssertEqual(sh[key]?.stringValue?.hasPrefix("gen"), true)
                XCTAssertEqual(
                    sh[key]?.stringValue?.split(separator: "@").last, value.stringValue?.split(separator: "@").last)
            default:
                XCTAssertEqual(sh[key], value, "headers.\(key)")
            }
        }
        let sb = try XCTUnwrap(swift["body"]?.stringValue.flatMap { Base64.decode(Array($0.utf8)) })
        let pb = try XCTUnwrap(python["body"]?.stringValue.flatMap { Base64.decode(Array($0.utf8)) })
        XCTAssertEqual(try JSONParser.parse(sb), try JSONParser.parse(pb), "body [args, kwargs, embed]")
    }

    /// (5) `revoke(terminate:)` reaches a Celeris worker (a running task is stopped, REVOKED)
    /// and a Python worker (a task held for its ETA is dropped, REVOKED).
    func testRevokeReachesCelerisAndPythonWorkers() async throws {
        let worker = try CelerisProcess.worker(redis: redis, step: "0.05")
        defer { worker.stop() }
        let long = try await client.send("create_task", args: [2000])
        for try await s in long.states where s.state == "PROGRESS" { break }
        try await long.revoke(terminate: true)
        let e = await thrown { try await long.get(timeout: .seconds(30)) }
        XCTAssertEqual((e as? TaskFailure)?.type, "TaskRevokedError", "\(String(describing: e))")

        let python = try PythonWorker.spawn(redis: redis, queues: "py")
        defer { python.stop() }
        let held = try await client.send("add", args: [1, 2], options: SendOptions(queue: "py", countdown: 3))
        try await client.revoke(held.id)
        let p = await thrown { try await held.get(timeout: .seconds(30)) }
        XCTAssertEqual((p as? TaskFailure)?.type, "TaskRevokedError", "\(String(describing: p))\n\(python.log)")
    }

    /// (6) chain, group and chord sent from Swift complete on a Celeris worker.
    func testCanvasFromSwiftCompletes() async throws {
        let worker = InProcessWorker(redis: redis)
        defer { worker.stop() }
        let chain = Canvas.chain([
            .task(Signature("add", args: [1, 2])), .task(Signature("add", args: [3])),
            .task(Signature("add", args: [4])),
        ])
        let ten = try await client.send(chain).get(timeout: .seconds(20))
        XCTAssertEqual(ten, 10)
        let group = Canvas.group([.task(Signature("add", args: [1, 1])), .task(Signature("add", args: [2, 2]))])
        let four = try await client.send(group).get(timeout: .seconds(20))
        XCTAssertEqual(four, 4)
        let chord = Canvas.chord(
            [
                .task(Signature("add", args: [1, 1])), .task(Signature("add", args: [2, 2])),
                .task(Signature("add", args: [3, 3])),
            ],
            Signature("tsum"))
        let id = TaskMessage.newId()
        let handle = try await client.send(chord, options: SendOptions(taskId: id))
        XCTAssertEqual(handle.id, id)
        let twelve = try await handle.get(timeout: .seconds(20))
        XCTAssertEqual(twelve, 12)
    }

    /// (7) No result within the timeout: `timedOut` soon after it, and the subscription is given back.
    func testGetTimesOutCleanly() async throws {
        let handle = try await client.send("add", args: [1, 2], options: SendOptions(queue: "nobody"))
        let start = ContinuousClock.now
        let e = await thrown { try await handle.get(timeout: .milliseconds(300)) }
        let took = ContinuousClock.now - start
        XCTAssertEqual(e as? CelerisClientError, .timedOut(taskId: handle.id, after: .milliseconds(300)))
        XCTAssertGreaterThanOrEqual(took, .milliseconds(300))
        XCTAssertLessThan(took, .seconds(5))
        let db = try redis.client()
        let unsubscribed = try await eventuallySuspending(timeout: 10) {
            try db.command("PUBSUB", "NUMSUB", ResultRecord.key(handle.id)).elements?.last?.integer == 0
        }
        XCTAssertTrue(unsubscribed, "the result channel is unsubscribed after the timeout")
        // The client still works afterwards.
        let worker = InProcessWorker(redis: redis, queues: ["nobody"])
        defer { worker.stop() }
        let three = try await handle.get(timeout: .seconds(20))
        XCTAssertEqual(three, 3)
    }

    /// Redis restarts: a result awaited across it arrives (the channel subscribed again and the
    /// key read again), and a send made while Redis is down is held and sent once it is back.
    func testAwaitAndSendAcrossARedisRestart() async throws {
        let id = TaskMessage.newId()
        let client = self.client!
        let awaited = Task { try await client.handle(for: id).get(timeout: .seconds(60)) }
        let db = try redis.client()
        let subscribed = try await eventuallySuspending(timeout: 10) {
            try db.command("PUBSUB", "NUMSUB", ResultRecord.key(id)).elements?.last?.integer == 1
        }
        XCTAssertTrue(subscribed)
        redis.stop()
        while await client.isConnected() { try await Task.sleep(for: .milliseconds(5)) }
        let sent = Task { try await client.send("add", args: [2, 3], options: SendOptions(taskId: id)).id }
        try redis.start()
        let sentId = try await sent.value
        XCTAssertEqual(sentId, id)
        let worker = InProcessWorker(redis: redis)
        defer { worker.stop() }
        let five = try await awaited.value
        XCTAssertEqual(five, 5)
    }

    /// A broker named by host name (resolved off the client's loop, every address tried in
    /// turn), through the process's shared client for that URL.
    func testSharedClientByHostName() async throws {
        let url = "redis://localhost:\(redis.port)/0"
        let shared = try CelerisClient.shared(broker: url)
        XCTAssertTrue(try CelerisClient.shared(broker: url) === shared, "one client per URL")
        let worker = InProcessWorker(redis: redis)
        defer { worker.stop() }
        let sum = try await shared.send("add", args: [4, 5]).get(timeout: .seconds(30))
        XCTAssertEqual(sum, 9)
        await shared.close()
        XCTAssertFalse(try CelerisClient.shared(broker: url) === shared, "a closed client is replaced")
        await (try CelerisClient.shared(broker: url)).close()
    }

    /// The revoke broadcast is Celery's pidbox command: what the worker's `ControlRequest` reads
    /// (method, arguments, every worker), on kombu's fanout channel for the broker's db, valid 1 s.
    func testRevokeBroadcastIsCeleryPidboxCommand() throws {
        let command = ControlBroadcast.revoke("t-1", terminate: true, db: 3, clock: 7, now: 1000)
        XCTAssertEqual(command.count, 3)
        XCTAssertEqual(command.first, "PUBLISH")
        XCTAssertEqual(command.dropFirst().first, "/3.celery.pidbox")
        let envelope = Array(command.last?.utf8 ?? "".utf8)
        let request = try XCTUnwrap(ControlRequest(envelope: envelope, now: 1000.5))
        XCTAssertEqual(request.method, "revoke")
        XCTAssertEqual(request.arguments, ["task_id": "t-1", "terminate": true, "signal": "SIGTERM"])
        XCTAssertNil(request.destination)
        XCTAssertNil(request.ticket)
        XCTAssertNil(ControlRequest(envelope: envelope, now: 1001.5), "expired after Celery's 1 s broadcast timeout")
        let (headers, body) = try XCTUnwrap(KombuEnvelope.read(envelope))
        XCTAssertEqual(headers, ["clock": 7, "expires": 1001.0])
        XCTAssertEqual(body.objectPairs?.map(\.key), ["method", "arguments", "destination", "pattern", "matcher"])
    }
}
