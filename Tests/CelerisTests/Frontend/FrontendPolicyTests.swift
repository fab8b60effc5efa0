import FastCore
import Foundation
import XCTest

/// What an HTTP client may do (issue 19): only allowed tasks with bounded arguments,
/// only known queues, JSON bodies declared JSON, Host checked on a loopback listener,
/// browser Origins checked, and subscription lookups within the pending-command bound.
final class FrontendPolicyTests: FrontendTestCase {
    override var frontendFlags: [String] {
        ["--loops", "1", "--allow-queue", "extra_q", "--route", "report_*=reports", "--max-pending-redis", "2"]
    }

    /// One request with exactly these head lines (no Host unless given).
    func raw(_ method: String, _ path: String, _ lines: [String], body: String = "") throws -> HTTPResponse {
        let s = try RawSocket(port: port)
        var head = "\(method) \(path) HTTP/1.1\r\n"
        for l in lines { head += l + "\r\n" }
        if !body.isEmpty { head += "Content-Length: \(body.utf8.count)\r\n" }
        try s.send(head + "\r\n" + body)
        return try s.readResponse()
    }

    func post(_ body: String, path: String = "/tasks") throws -> HTTPResponse {
        try HTTPClient.request("POST", port: port, path: path, body: body)
    }

    func queued(_ queue: String) throws -> Int64? { try client.command("LLEN", queue).integer }

    func testOnlyAllowedTasksWithBoundedArgumentsAreSent() throws {
        for body in [
            #"{"task": "fetch_documents_task", "args": ["/"]}"#,
            #"{"task": "extract_data_task", "args": ["/etc/passwd"]}"#,
            #"{"task": "compare_data_task", "args": [[]]}"#, #"{"task": "report_daily"}"#,
        ] {
            let r = try post(body)
            XCTAssertEqual(r.status, 403, body)
            XCTAssertEqual(r.json?["error"], "task_not_allowed", body)
        }
        for body in [
            #"{"task": "create_task", "args": [1000000]}"#,
            #"{"task": "create_task", "kwargs": {"task_length": 1001}}"#,
            #"{"task": "create_task", "args": [1, 2]}"#, #"{"task": "create_task", "args": ["5"]}"#,
            #"{"task": "add", "args": ["a", "b"]}"#, #"{"task": "add", "args": [1]}"#,
        ] {
            let r = try post(body)
            XCTAssertEqual(r.status, 422, body)
            XCTAssertEqual(r.json?["error"], "invalid_task", body)
        }
        let long = try HTTPClient.request("POST", port: port, path: "/tasks?task_length=5000")
        XCTAssertEqual(long.status, 422)
        for q in ["fetch_queue", "extract_queue", "compare_queue", "reports"] {
            XCTAssertEqual(try queued(q), 0, q)
        }
        XCTAssertEqual(try queued("celery"), 0, "nothing refused was queued")

        XCTAssertEqual(try HTTPClient.request("POST", port: port, path: "/tasks").status, 200)
        XCTAssertEqual(try HTTPClient.request("POST", port: port, path: "/tasks?task_length=1000").status, 200)
        XCTAssertEqual(try post(#"{"task": "add", "args": [2, 3.5]}"#).status, 200)
        XCTAssertEqual(try post(#"{"task": "create_task", "kwargs": {"task_length": 3}}"#).status, 200)
        XCTAssertEqual(try queued("celery"), 4)
        // /process builds its own workflow and stays allowed.
        XCTAssertEqual(try post(#"{"blob_path": "docs"}"#, path: "/process").status, 200)
        XCTAssertEqual(try queued("fetch_queue"), 1)
    }

    func testQueueNamesAreCheckedAndLimitedToKnownQueues() throws {
        let tooLong = String(repeating: "q", count: 201)
        for q in [tooLong, "bad name", "a\\u0000b", "ümlaut"] {
            let r = try post(#"{"task": "add", "args": [1, 2], "queue": "\#(q)"}"#)
            XCTAssertEqual(r.status, 422, q)
        }
        for q in ["random_q", "q\(UUID().uuidString)"] {
            let r = try post(#"{"task": "add", "args": [1, 2], "queue": "\#(q)"}"#)
            XCTAssertEqual(r.status, 403, q)
            XCTAssertEqual(r.json?["error"], "queue_not_allowed")
        }
        XCTAssertEqual(try client.command("KEYS", "*").elements?.count ?? -1, 0, "no queue, binding or key was made")
        for q in ["extra_q", "celery", "reports", "fetch_queue"] {
            XCTAssertEqual(try post(#"{"task": "add", "args": [1, 2], "queue": "\#(q)"}"#).status, 200, q)
            XCTAssertEqual(try queued(q), 1, q)
        }
    }

    func testJSONBodiesNeedAJSONContentType() throws {
        let body = #"{"task": "add", "args": [1, 2]}"#
        for type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
            let r = try raw("POST", "/tasks", ["Host: 127.0.0.1", "Content-Type: \(type)"], body: body)
            XCTAssertEqual(r.status, 415, type)
            XCTAssertEqual(r.json?["error"], "unsupported_media_type")
        }
        XCTAssertEqual(try raw("POST", "/tasks", ["Host: 127.0.0.1"], body: body).status, 415, "no Content-Type")
        let workflow = try raw(
            "POST", "/process", ["Host: 127.0.0.1", "Content-Type: text/plain"], body: #"{"blob_path": "docs"}"#)
        XCTAssertEqual(workflow.status, 415)
        XCTAssertEqual(try queued("celery"), 0)
        XCTAssertEqual(try queued("fetch_queue"), 0)
        for type in ["application/json; charset=utf-8", "Application/JSON", "application/vnd.celeris+json"] {
            XCTAssertEqual(
                try raw("POST", "/tasks", ["Host: 127.0.0.1", "Content-Type: \(type)"], body: body).status, 200, type)
        }
        XCTAssertEqual(try queued("celery"), 3)
    }

    /// DNS rebinding: a page on evil.example resolving to 127.0.0.1 reaches a loopback
    /// listener with `Host: evil.example`.
    func testLoopbackListenerAnswersOnlyLoopbackHostNames() throws {
        for (method, path) in [("POST", "/tasks"), ("GET", "/status/x"), ("GET", "/ws"), ("GET", "/metrics")] {
            let r = try raw(method, path, ["Host: evil.example:\(port)"])
            XCTAssertEqual(r.status, 400, path)
            XCTAssertEqual(r.json?["error"], "host_not_allowed", path)
        }
        XCTAssertEqual(try queued("celery"), 0)
        XCTAssertEqual(try raw("GET", "/health", ["Host: evil.example"]).status, 200, "/health answers any Host")
        for host in ["localhost:\(port)", "127.0.0.1", "[::1]:\(port)", "LOCALHOST"] {
            XCTAssertEqual(try raw("POST", "/tasks", ["Host: \(host)"]).status, 200, host)
        }
        XCTAssertEqual(try raw("POST", "/tasks", []).status, 200, "no Host (HTTP/1.0-style client)")
    }

    func testBrowserOriginsAreCheckedOnTheWebSocketAndOnPosts() throws {
        let upgrade = [
            "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
        ]
        let evil = try raw("GET", "/ws", ["Host: 127.0.0.1:\(port)", "Origin: http://evil.example"] + upgrade)
        XCTAssertEqual(evil.status, 403)
        XCTAssertEqual(evil.json?["error"], "origin_not_allowed")
        XCTAssertEqual(
            try raw("GET", "/ws", ["Host: 127.0.0.1:\(port)", "Origin: null"] + upgrade).status, 403, "opaque origin")
        XCTAssertEqual(
            try raw("GET", "/ws", ["Host: 127.0.0.1:\(port)", "Origin: http://127.0.0.1:\(port)"] + upgrade).status,
            101, "same origin")
        XCTAssertEqual(try raw("GET", "/ws", ["Host: 127.0.0.1:\(port)"] + upgrade).status, 101, "no Origin")
        XCTAssertEqual(
            try raw("POST", "/tasks", ["Host: localhost:\(port)", "Origin: https://evil.example"]).status, 403,
            "a cross-site form POST")
        XCTAssertEqual(try queued("celery"), 0)
    }

    func testConfiguredHostsAndOrigins() throws {
        frontend.stop()
        port = freePort()
        frontend = try CelerisProcess.frontend(
            redis: redis, port: port,
            extra: [
                "--allowed-host", "app.example", "--allowed-host", "*.app.example", "--allow-origin",
                "https://ui.example",
            ])
        let upgrade = [
            "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
        ]
        XCTAssertEqual(try raw("POST", "/tasks", ["Host: app.example"]).status, 200)
        XCTAssertEqual(try raw("POST", "/tasks", ["Host: eu.app.example:8000"]).status, 200)
        XCTAssertEqual(try raw("POST", "/tasks", ["Host: localhost"]).status, 400, "the list replaces the default")
        XCTAssertEqual(
            try raw("GET", "/ws", ["Host: app.example", "Origin: https://ui.example"] + upgrade).status, 101)
        XCTAssertEqual(
            try raw("GET", "/ws", ["Host: app.example", "Origin: https://other.example"] + upgrade).status, 403)
    }

    func testAllowListFileAndTaskLengthFlags() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("allow-\(UUID().uuidString).txt")
        try Data("# reports\nreport_*\n\nnoop\n".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        frontend.stop()
        port = freePort()
        frontend = try CelerisProcess.frontend(
            redis: redis, port: port,
            extra: ["--allow-tasks-file", file.path, "--max-task-length", "10", "--default-task-length", "3"])
        XCTAssertEqual(try post(#"{"task": "report_daily"}"#).status, 200)
        XCTAssertEqual(try post(#"{"task": "noop", "args": [1]}"#).status, 200)
        XCTAssertEqual(try post(#"{"task": "tsum", "args": [[1]]}"#).status, 403)
        XCTAssertEqual(try HTTPClient.request("POST", port: port, path: "/tasks?task_length=10").status, 200)
        XCTAssertEqual(try HTTPClient.request("POST", port: port, path: "/tasks?task_length=11").status, 422)
        XCTAssertEqual(try queued("celery"), 3)

        let refused = try Spawned(
            try TestPaths.executable("celeris-frontend"),
            ["-b", redis.url, "--port", "0", "--max-task-length", "10", "--default-task-length", "20"],
            name: "bad-flags")
        refused.process.waitUntilExit()
        XCTAssertNotEqual(refused.process.terminationStatus, 0)
        XCTAssertTrue(refused.log.contains("--default-task-length must be <= --max-task-length"), refused.log)
    }

    /// `subscribe` reads each new task's state once its result channel is subscribed: with Redis
    /// stalled, the reads of one loop turn go out as one MGET, and a read that would take the
    /// connection over --max-pending-redis (2) waits and is tried again instead of queueing
    /// without bound. Every subscription gets its state once Redis answers again.
    func testSubscriptionLookupsStayWithinThePendingBound() throws {
        let ws = try WSFrame.open(port: port)
        // Every other client's commands wait while Redis is paused (in effect once +OK is read).
        let pause = try redis.client()
        XCTAssertEqual(try pause.command("CLIENT", "PAUSE", "1500").text, "OK")
        let ids = (0..<6).map { "t\($0)" }
        let list = ids.map { "\"\($0)\"" }.joined(separator: ", ")
        try ws.send(WSFrame.make(opcode: 0x1, payload: Array(#"{"subscribe": [\#(list)]}"#.utf8)))
        var replies: [String: JSON] = [:]
        while replies.count < ids.count {
            let m = try WebSocketFanOutTests.nextText(ws)
            replies[m["task_id"]?.stringValue ?? "?"] = m
        }
        XCTAssertEqual(Set(replies.keys), Set(ids))
        XCTAssertEqual(replies.values.filter { $0["state"] == "PENDING" }.count, ids.count, "\(replies)")
    }
}
