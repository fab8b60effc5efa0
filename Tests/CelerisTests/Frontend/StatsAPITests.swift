@testable import FastCore
import Foundation
import XCTest

/// `GET /stats` (queue depths, throughput history, workers found by `inspect` broadcasts) and
/// `GET /` (the dashboard page), against a real Redis, a Celeris worker and a Python Celery worker.
final class StatsAPITests: RedisTestCase {
    private func stats(_ port: Int, headers: [String: String] = [:]) throws -> JSON {
        let r = try HTTPClient.request("GET", port: port, path: "/stats", headers: headers)
        guard r.status == 200, let json = r.json else { throw TestFailure("GET /stats: \(r.status) \(r.text)") }
        return json
    }

    private func worker(_ s: JSON, _ hostname: String) -> JSON? {
        s["workers"]?.arrayValue?.first { $0["hostname"]?.stringValue == hostname }
    }

    private func historySum(_ s: JSON, _ field: String) -> Int64 {
        (s["history"]?.arrayValue ?? []).reduce(0) { $0 + ($1[field]?.intValue ?? 0) }
    }

    private func post(_ port: Int, _ body: String) throws {
        let r = try HTTPClient.request("POST", port: port, path: "/tasks", body: body)
        XCTAssertEqual(r.status, 200, r.text)
    }

    func testDashboardPageCarriesTheDOMContractAndIsOpenWithAuthOn() throws {
        let secret = "stats-secret-\(UUID().uuidString)"
        let port = freePort()
        let frontend = try CelerisProcess.frontend(redis: redis, port: port, extra: ["--auth-secret", secret])
        let page = try HTTPClient.request("GET", port: port, path: "/")
        XCTAssertEqual(page.status, 200)
        XCTAssertEqual(page.headers["content-type"], "text/html; charset=utf-8")
        XCTAssertEqual(page.headers["cache-control"], "no-cache")
        for id in [
            "token", "token-save", "task-form", "task-name", "task-args", "task-kwargs", "task-submit", "process-form",
            "blob-path", "threshold", "process-submit", "tasks", "connection", "queues", "throughput-chart", "workers",
            "error",
        ] {
            XCTAssertTrue(page.text.contains("id=\"\(id)\""), "no element #\(id)")
        }
        XCTAssertTrue(page.text.contains(#"<input id="task-name" value="create_task">"#))
        XCTAssertTrue(page.text.contains(#"<input id="task-args" value="[3]">"#))
        XCTAssertTrue(page.text.contains(#"<canvas id="throughput-chart""#))
        XCTAssertTrue(page.text.contains("window.celerisDashboard"))
        XCTAssertTrue(page.text.contains(#"localStorage.getItem("celeris.token")"#))
        XCTAssertFalse(page.text.contains("http://") || page.text.contains("https://"), "the page loads nothing else")
        XCTAssertEqual(try HTTPClient.request("GET", port: port, path: "/index.html").text, page.text)
        XCTAssertEqual(try HTTPClient.request("POST", port: port, path: "/").headers["allow"], "GET")
        // The page holds no data; /stats does, and needs the status scope.
        XCTAssertEqual(try HTTPClient.request("GET", port: port, path: "/stats").status, 401)
        let issue = try Spawned(
            try TestPaths.executable("celeris-frontend"),
            ["--auth-secret", secret, "--issue-token", "dash", "--token-scope", "status", "--token-ttl=600"],
            name: "issue")
        issue.process.waitUntilExit()
        let token = issue.log.trimmingCharacters(in: .whitespacesAndNewlines)
        let s = try stats(port, headers: ["Authorization": "Bearer \(token)"])
        XCTAssertEqual(s["interval"], 2)
        XCTAssertEqual(s["websockets"], 0)
        XCTAssertNotNil(s["history"]?.arrayValue)
        XCTAssertNotNil(s["workers"]?.arrayValue)
        XCTAssertTrue(frontend.isRunning)
    }

    func testCelerisAndPythonWorkersQueueDepthsAndThroughput() throws {
        let port = freePort()
        let frontend = try CelerisProcess.frontend(
            redis: redis, port: port, extra: ["--allow-queue", "pyq", "--allow-queue", "idle"])
        // Depth of a queue nobody consumes.
        for _ in 0..<2 { try post(port, #"{"task": "add", "args": [1, 2], "queue": "idle"}"#) }
        var s: JSON = .null
        XCTAssertTrue(
            try eventually(timeout: 10, interval: 0.2) {
                s = try stats(port)
                return s["queues"]?["idle"] == 2 && s["history"]?.arrayValue?.last?["queues"]?["idle"] == 2
            }, "\(s)")

        // Both kinds of worker answer the inspect broadcasts.
        let celeris = try CelerisProcess.worker(redis: redis, extra: ["-n", "cel@stats"])
        let python = try PythonWorker.spawn(redis: redis, name: "py@stats", queues: "pyq")
        XCTAssertTrue(
            try eventually(timeout: 30, interval: 0.3) {
                s = try stats(port)
                guard let c = worker(s, "cel@stats"), let p = worker(s, "py@stats") else { return false }
                // A queue a worker consumes (and no client named) is sampled too.
                return c["queues"] == ["celery"] && p["queues"] == ["pyq"]
                    && p["software"]?.stringValue?.hasPrefix("celery 5.7") == true && s["queues"]?["pyq"] == 0
            }, "\(s)\n\(python.log)")
        let c = try XCTUnwrap(worker(s, "cel@stats"))
        let p = try XCTUnwrap(worker(s, "py@stats"))
        XCTAssertEqual(c["concurrency"], 2)
        XCTAssertEqual(c["software"], .string("celeris \(CelerisVersion.current)"))
        XCTAssertEqual(c["processed"], 0)
        XCTAssertEqual(p["concurrency"], 1)
        XCTAssertEqual(p["processed"], 0)
        XCTAssertLessThanOrEqual(abs((c["last_seen"]?.doubleValue ?? 0) - Date().timeIntervalSince1970), 10)

        // Tasks sent and run show in the workers' totals and in the history.
        for _ in 0..<4 { try post(port, #"{"task": "add", "args": [2, 3]}"#) }
        for _ in 0..<3 { try post(port, #"{"task": "add", "args": [4, 5], "queue": "pyq"}"#) }
        XCTAssertTrue(
            try eventually(timeout: 30, interval: 0.3) {
                s = try stats(port)
                return worker(s, "cel@stats")?["processed"] == 4 && worker(s, "py@stats")?["processed"] == 3
                    && historySum(s, "processed") == 7 && historySum(s, "submitted") == 9
                    && s["queues"]?["celery"] == 0 && s["queues"]?["pyq"] == 0 && s["queues"]?["idle"] == 2
            }, "\(s)\n\(python.log)")
        XCTAssertTrue(frontend.isRunning && celeris.isRunning && python.isRunning)
    }

    func testMalformedRepliesAreSkipped() throws {
        let port = freePort()
        let frontend = try CelerisProcess.frontend(redis: redis, port: port)
        let celeris = try CelerisProcess.worker(redis: redis, extra: ["-n", "cel@junk"])
        var s: JSON = .null
        XCTAssertTrue(
            try eventually(timeout: 20, interval: 0.3) {
                s = try stats(port)
                return worker(s, "cel@junk") != nil
            }, "\(s)")
        // Catch a `stats` broadcast to learn its ticket and the frontend's reply queue.
        let sub = try RedisConnection(endpoint: redis.endpoint, readTimeoutMs: 5000)
        _ = try sub.command("SUBSCRIBE", "/0.celery.pidbox")
        var ticket = "", routingKey = ""
        let deadline = Date().addingTimeInterval(15)
        while ticket.isEmpty && Date() < deadline {
            _ = try stats(port)  // keeps the inspector running
            let message = try sub.read()
            guard let payload = message.elements?.last?.bytes, let body = KombuEnvelope.body(of: payload),
                body["method"] == "stats"
            else { continue }
            ticket = body["ticket"]?.stringValue ?? ""
            routingKey = body["reply_to"]?["routing_key"]?.stringValue ?? ""
        }
        XCTAssertFalse(ticket.isEmpty, "no stats broadcast seen")
        XCTAssertFalse(routingKey.isEmpty)
        func reply(_ body: JSON, ticket: String = ticket) -> String {
            KombuEnvelope.make(
                body: body, headers: ["ticket": .string(ticket), "clock": 1], exchange: "reply.celery.pidbox",
                routingKey: routingKey)
        }
        let junk = [
            "not json at all",
            #"{"body": "!!!not base64", "headers": {"ticket": "\#(ticket)"}}"#,
            reply(.array([1, 2])),
            reply(["text@junk": "a string where stats are an object"]),
            reply(["list@junk": [1, 2, 3]]),
            reply(["": [:]]),
            reply(["ghost@junk": ["total": ["add": 1]]], ticket: "a ticket nobody sent"),
            reply([
                "huge@junk": [
                    "total": ["add": .double(1e300), "noop": "many", "tsum": .int(Int64.max)],
                    "pool": ["max-concurrency": .int(-5), "running": .double(-1e300)],
                    "sw_ident": .string(String(repeating: "x", count: 500)), "sw_ver": "1",
                ]
            ]),
        ]
        let queue = routingKey + ".reply.celery.pidbox"
        for j in junk { XCTAssertEqual(try client.command("LPUSH", queue, j).errorMessage, nil) }
        XCTAssertTrue(
            try eventually(timeout: 10, interval: 0.2) {
                s = try stats(port)
                return worker(s, "huge@junk") != nil
            }, "\(s)")
        let huge = try XCTUnwrap(worker(s, "huge@junk"))
        XCTAssertEqual(huge["concurrency"], 0)
        XCTAssertEqual(huge["active"], 0)
        XCTAssertEqual(huge["processed"], .int(1 << 40), "counts are bounded, not trapped on")
        XCTAssertEqual(huge["software"], "celery", "an oversized version is not taken")
        for name in ["text@junk", "list@junk", "", "ghost@junk"] { XCTAssertNil(worker(s, name), name) }
        XCTAssertEqual(worker(s, "cel@junk")?["concurrency"], 2)
        XCTAssertTrue(frontend.isRunning && celeris.isRunning)
    }

    /// A sample keeps the 50 deepest queues (ties by name) and the total of every queue
    /// read, so 300 samples never hold every known queue's depth.
    func testSamplesKeepTheDeepestQueuesAndTheirTotal() {
        XCTAssertEqual(StatsBoard.deepest(["a": 1, "b": 5, "c": 3, "d": 3], limit: 2), ["b": 5, "c": 3])
        XCTAssertEqual(StatsBoard.deepest(["a": 1], limit: 2), ["a": 1])
        let depths = Dictionary(uniqueKeysWithValues: (0..<120).map { ("q\($0)", $0) })
        let kept = StatsBoard.deepest(depths)
        XCTAssertEqual(kept.count, StatsBoard.maxSampledQueues)
        XCTAssertEqual(kept.values.min(), 70)
        let board = StatsBoard()
        board.record(
            StatsBoard.Sample(
                t: 1, queues: kept, submitted: 0, processed: 0, depthTotal: depths.values.reduce(0, +),
                queueCount: depths.count))
        let json = StatsAPI.render(board: board, webSockets: 0, now: 2)
        XCTAssertEqual(json["queues"]?.objectPairs?.count, 50)
        XCTAssertEqual(json["history"]?[0]?["depth_total"], 7140)
        XCTAssertEqual(json["history"]?[0]?["queue_count"], 120)
    }

    /// The frontend's reply binding is kept as kombu keeps it (an hour's sweep deadline),
    /// replies left after a round expire, and a graceful stop unbinds (SREM) and deletes
    /// the reply queue.
    func testTheReplyQueueExpiresAndIsUnboundOnStop() throws {
        // The bind script on its own: a leftover reply queue gets the 10 s expiry.
        let bindingKey = QueueKeys.bindingKey(exchange: WorkerInspector.replyExchange)
        XCTAssertEqual(try client.command("LPUSH", "left.reply.celery.pidbox", "late").errorMessage, nil)
        _ = try client.command(
            "EVAL", WorkerInspector.bindScript, "3", "test.binding", "test.deadlines", "left.reply.celery.pidbox",
            "member", WorkerInspector.replyExchange, String(WorkerInspector.bindingTTLMs),
            String(WorkerInspector.replyTTLMs))
        let ttl = try client.command("PTTL", "left.reply.celery.pidbox").integer ?? -1
        XCTAssertTrue((1...10_000).contains(ttl), "PTTL \(ttl)")

        let port = freePort()
        let frontend = try CelerisProcess.frontend(redis: redis, port: port)
        var members: [String] = []
        XCTAssertTrue(
            try eventually(timeout: 15, interval: 0.2) {
                _ = try stats(port)  // keeps the inspector running
                members = (try client.command("SMEMBERS", bindingKey).elements ?? []).compactMap(\.text)
                return !members.isEmpty
            })
        let member = try XCTUnwrap(members.first)
        let queue = try XCTUnwrap(member.components(separatedBy: "\u{06}\u{16}").last)
        XCTAssertTrue(queue.hasSuffix(".reply.celery.pidbox"), queue)
        let nowMs = Date().timeIntervalSince1970 * 1000
        let deadline = try XCTUnwrap(
            try client.command("ZSCORE", "_kombu.binding_deadlines", WorkerInspector.replyExchange).text.flatMap(
                Double.init))
        XCTAssertGreaterThan(deadline, nowMs + 3_000_000, "kombu's binding TTL is an hour")
        XCTAssertEqual(try client.command("LPUSH", queue, "a late reply").errorMessage, nil)
        frontend.stop(grace: 10)
        XCTAssertEqual(try client.command("SISMEMBER", bindingKey, member).integer, 0)
        XCTAssertEqual(try client.command("EXISTS", queue).integer, 0)
    }

    func testHistoryKeepsTenMinutesOfSamples() {
        let board = StatsBoard()
        for _ in 0..<3 { board.countSubmitted() }
        XCTAssertEqual(board.takeSubmitted(), 3)
        XCTAssertEqual(board.takeSubmitted(), 0)
        for i in 0..<(StatsBoard.capacity + 5) {
            board.record(StatsBoard.Sample(t: Double(i) * 2, queues: ["celery": i], submitted: 1, processed: 2))
        }
        XCTAssertEqual(StatsBoard.capacity, 300)
        XCTAssertEqual(board.history.count, 300)
        XCTAssertEqual(board.history.first?.t, 10)
        board.markRead(now: 1000)
        XCTAssertTrue(board.readRecently(now: 1030))
        XCTAssertFalse(board.readRecently(now: 1030.5))
        let json = StatsAPI.render(board: board, webSockets: 7, now: 2000)
        XCTAssertEqual(json["time"], 2000)
        XCTAssertEqual(json["queues"], ["celery": 304])
        XCTAssertEqual(json["history"]?.arrayValue?.count, 300)
        XCTAssertEqual(
            json["history"]?[0],
            [
                "t": 10, "queues": ["celery": 5], "submitted": 1, "processed": 2, "depth_total": 5,
                "queue_count": 1,
            ])
        XCTAssertEqual(json["websockets"], 7)
        XCTAssertEqual(json["workers"], [])
    }
}
