import FastCore
import Foundation
import XCTest

/// `GET /openapi.json` against a real frontend, redis-server and worker: every route is asked
/// good and bad requests (each documented status at least once where it can be reached), the
/// real answers (and WebSocket messages) are checked against the served document's schemas by
/// `Tests/openapi_check.py` (openapi-spec-validator, openapi-schema-validator), and every
/// method and path the frontend routes must be a documented operation, and every documented
/// operation a route.
final class OpenAPITests: FrontendTestCase {
    let secret = "openapi-secret"
    /// `--max-connections`: phase "503 too_many_connections" holds this many sockets.
    let maxConnections = 40

    override var frontendFlags: [String] {
        [
            "--auth-secret", secret, "--loops", "1", "--max-body-bytes", "4096", "--max-header-bytes", "4096",
            "--header-timeout-ms", "6000", "--max-connections", "\(maxConnections)", "--allow-task", "tsum",
            "--allow-task", "noop", "--allow-queue", "py",
        ]
    }

    /// The token a request carries.
    enum Auth {
        case all
        case none
        case scopes([String])
    }

    /// Every answer and WebSocket message seen, for the checker.
    private var answers: [JSON] = []
    private var messages: [JSON] = []

    private func token(_ auth: Auth) -> String? {
        let issuer = BearerAuth(secret: secret)
        switch auth {
        case .all: return issuer.issue(subject: "openapi", ttl: 3600, scopes: ["*"])
        case .none: return nil
        case .scopes(let s): return issuer.issue(subject: "openapi", ttl: 3600, scopes: s)
        }
    }

    /// The bytes of one request.
    private func requestText(
        _ method: String, _ path: String, body: String?, contentType: String?, auth: Auth, host: String?,
        headers: [(String, String)]
    ) -> String {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: \(host ?? "127.0.0.1:\(port)")\r\n"
        if let t = token(auth) { text += "Authorization: Bearer \(t)\r\n" }
        for (k, v) in headers { text += "\(k): \(v)\r\n" }
        if let body {
            if let contentType { text += "Content-Type: \(contentType)\r\n" }
            text += "Content-Length: \(body.utf8.count)\r\n"
        }
        return text + "\r\n" + (body ?? "")
    }

    private func record(_ method: String, _ path: String, _ r: HTTPResponse) {
        answers.append(
            .object([
                ("method", .string(method)), ("path", .string(path)), ("status", .int(Int64(r.status))),
                ("content_type", r.headers["content-type"].map { .string($0) } ?? .null),
                ("headers", .object(r.headers.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
                ("body", .string(r.text)),
            ]))
    }

    /// One request on a fresh connection; its answer is recorded.
    @discardableResult
    private func call(
        _ method: String, _ path: String, body: String? = nil, contentType: String? = "application/json",
        auth: Auth = .all, host: String? = nil, headers: [(String, String)] = []
    ) throws -> HTTPResponse {
        let s = try RawSocket(port: port)
        try s.send(
            requestText(
                method, path, body: body, contentType: contentType, auth: auth, host: host, headers: headers))
        let r = try s.readResponse()
        record(method, path, r)
        return r
    }

    private static let upgrade = [
        ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ]

    /// One request per documented operation (and two that reach none), for the checks every
    /// route shares: Host, token, limits, timeouts, connection cap, Redis down.
    private func operations(taskId: String) -> [(
        method: String, path: String, body: String?, headers: [(String, String)]
    )] {
        let entry = #"{"task": "add", "schedule": 30, "args": [1, 2]}"#
        return [
            ("POST", "/tasks", nil, []),
            ("DELETE", "/tasks/\(taskId)", nil, []),
            ("POST", "/tasks/\(taskId)/revoke", nil, []),
            ("GET", "/status/\(taskId)", nil, []),
            ("POST", "/process?blob_path=docs", nil, []),
            ("POST", "/process/?blob_path=docs", nil, []),
            ("GET", "/schedule", nil, []),
            ("PUT", "/schedule/shared-checks", entry, []),
            ("DELETE", "/schedule/shared-checks", nil, []),
            ("GET", "/stats", nil, []),
            ("GET", "/health", nil, []),
            ("GET", "/metrics", nil, []),
            ("GET", "/ws", nil, Self.upgrade),
            ("GET", "/", nil, []),
            ("GET", "/openapi.json", nil, []),
            ("GET", "/no-such-route", nil, []),
            ("PATCH", "/tasks", nil, []),
        ]
    }

    /// The first text frame on a WebSocket.
    private func textFrame(_ s: RawSocket) throws -> String {
        for _ in 0..<20 {
            let frame = try WSFrame.read(s)
            if frame.opcode == 1 { return String(decoding: frame.payload, as: UTF8.self) }
        }
        throw TestFailure("no text frame among 20")
    }

    private func message(_ schema: String, _ text: String) {
        messages.append(["schema": .string(schema), "body": .string(text)])
    }

    /// Poll `GET /status/{id}` (every answer recorded) until `done` holds for its body.
    private func pollStatus(_ id: String, timeout: Double = 20, until done: (JSON) -> Bool) throws -> JSON {
        var last = JSON.null
        let reached = try eventually(timeout: timeout) {
            let r = try call("GET", "/status/\(id)")
            last = r.json ?? .null
            return done(last)
        }
        XCTAssertTrue(reached, "status of \(id) never reached the wanted state; last \(last)")
        return last
    }

    /// Run `Tests/openapi_check.py` on the document and what was collected; its JSON report.
    private func check(document: URL, routes: [JSON]) throws -> JSON {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("openapi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("answers.json")
        let data: JSON = ["answers": .array(answers), "messages": .array(messages), "routes": .array(routes)]
        try Data(data.serialized().utf8).write(to: input)
        if let keep = ProcessInfo.processInfo.environment["OPENAPI_CHECK_KEEP"] {  // to rerun the checker by hand
            try Data(data.serialized().utf8).write(to: URL(fileURLWithPath: keep))
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try TestPaths.python())
        p.arguments = [
            TestPaths.repoRoot.appendingPathComponent("Tests/openapi_check.py").path, document.path, input.path,
        ]
        let out = Pipe()
        let errURL = dir.appendingPathComponent("stderr.txt")
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        p.standardOutput = out
        p.standardError = try FileHandle(forWritingTo: errURL)
        p.standardInput = FileHandle.nullDevice
        try withSignalsUnblocked { try p.run() }
        let bytes = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        guard p.terminationStatus == 0 || p.terminationStatus == 1, let report = try? JSONParser.parse(Array(bytes))
        else {
            throw TestFailure(
                "openapi_check.py exited \(p.terminationStatus): \(String(decoding: bytes, as: UTF8.self)) \(stderr)")
        }
        return report
    }

    /// Every method and path FrontendRoute routes, found by probing each path literal in its
    /// source (a literal ending in `/` is a prefix: probed with an id, and with an id and each
    /// other literal after it). Routes whose parameter would hold a `/` are left out: the
    /// frontend answers them 400/404 (documented on the operation the prefix names), as are
    /// routes with an empty parameter (`/status/`).
    private func routedPaths() throws -> [JSON] {
        let source = try String(
            contentsOf: TestPaths.repoRoot.appendingPathComponent("Sources/FastCore/Frontend/FrontendRoute.swift"),
            encoding: .utf8)
        let regex = try NSRegularExpression(pattern: #""(/[^"\\ ]*)""#)
        let literals = Set(
            regex.matches(in: source, range: NSRange(source.startIndex..., in: source)).compactMap {
                Range($0.range(at: 1), in: source).map { String(source[$0]) }
            })
        var probes: Set<String> = literals
        for prefix in literals where prefix.hasSuffix("/") {
            probes.insert(prefix + "some-id")
            for suffix in literals where !suffix.hasSuffix("/") { probes.insert(prefix + "some-id" + suffix) }
        }
        XCTAssertTrue(probes.contains("/tasks"), "the probe found FrontendRoute's paths: \(probes.sorted())")
        var routes: [JSON] = []
        for path in probes.sorted() {
            for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
                guard case .route(let route) = FrontendRoute.resolve(method: method, path: path),
                    !String(describing: route).contains("/"), !String(describing: route).contains("\"\"")
                else { continue }
                routes.append(["method": .string(method), "path": .string(path)])
            }
        }
        return routes
    }

    func testEveryRouteAnswersAsTheDocumentSays() throws {
        let worker = try CelerisProcess.worker(redis: redis, step: "0.3")
        defer { worker.stop() }
        // A Python Celery worker on its own queue: it records a link callback as a child.
        let pythonWorker = try PythonWorker.spawn(redis: redis, name: "py@openapi", queues: "py")
        defer { pythonWorker.stop() }

        // The document, served open.
        let served = try call("GET", "/openapi.json", auth: .none)
        XCTAssertEqual(served.status, 200)
        XCTAssertEqual(served.headers["content-type"], "application/json")
        XCTAssertEqual(served.text, OpenAPIDocument.json)
        let document = FileManager.default.temporaryDirectory.appendingPathComponent(
            "openapi-\(UUID().uuidString).json")
        try Data(served.body).write(to: document)
        defer { try? FileManager.default.removeItem(at: document) }

        // A WebSocket with no subscriptions (the token's `*` includes `ws:all`): the task_status firehose.
        let firehose = try RawSocket(port: port)
        try firehose.send(
            requestText("GET", "/ws", body: nil, contentType: nil, auth: .all, host: nil, headers: Self.upgrade))
        XCTAssertEqual(try firehose.readResponse().status, 101)

        // POST /tasks and the states GET /status shows.
        // Six 0.3 s steps: PROGRESS stays visible ~1.8 s, far longer than a poll's interval.
        let created = try call("POST", "/tasks?task_length=6")
        XCTAssertEqual(created.status, 200, created.text)
        let createdId = try XCTUnwrap(created.json?["task_id"]?.stringValue)
        _ = try pollStatus(createdId) { $0["state"] == "PROGRESS" }
        _ = try pollStatus(createdId) { $0["state"] == "SUCCESS" }
        message("WebSocketStatusEvent", try textFrame(firehose))
        let failing = try call("POST", "/tasks", body: #"{"task": "tsum", "args": [5]}"#)
        let failingId = try XCTUnwrap(failing.json?["task_id"]?.stringValue, failing.text)
        _ = try pollStatus(failingId) { $0["state"] == "FAILURE" }
        let expired = try call(
            "POST", "/tasks", body: #"{"task": "add", "args": [1, 2], "expires": -1, "task_id": "openapi-expired"}"#)
        XCTAssertEqual(expired.status, 200, expired.text)
        _ = try pollStatus("openapi-expired") { $0["state"] == "REVOKED" }
        let optioned = try call(
            "POST", "/tasks?countdown=0.1&ignore_result=false",
            body:
                #"{"task": "add", "args": [2, 3], "priority": 3, "link": {"task": "add", "args": [1, 1], "immutable": true}}"#
        )
        XCTAssertEqual(optioned.status, 200, optioned.text)
        let child = "openapi-child-\(UUID().uuidString)"
        let parent = try call(
            "POST", "/tasks",
            body:
                #"{"task": "add", "args": [20, 22], "queue": "py", "link": {"task": "noop", "options": {"task_id": "\#(child)"}}}"#
        )
        let parentId = try XCTUnwrap(parent.json?["task_id"]?.stringValue, parent.text)
        _ = try pollStatus(parentId) { $0["children"]?[0]?["state"] == "SUCCESS" }
        try call("GET", "/status/never-sent")
        try call("GET", "/status/\(createdId)?wait=5")
        try call("GET", "/status/\(createdId)?wait=0")
        try call("GET", "/status/" + String(repeating: "i", count: 256))
        try call("POST", "/tasks", body: "{")
        try call("POST", "/tasks", body: #"{"task": "os.system", "args": ["true"]}"#)
        try call("POST", "/tasks", body: #"{"task": "add", "args": [1]}"#)
        try call("POST", "/tasks", body: #"{"task": "add", "args": [1, 2]}"#, contentType: "text/plain")
        try call("POST", "/tasks", body: #"{"task": "add", "args": [1, 2]}"#, auth: .scopes(["tasks:create_task"]))

        // Revoke.
        for (method, path) in [("DELETE", "/tasks/openapi-revoked"), ("POST", "/tasks/openapi-revoked/revoke")] {
            try call(method, path)
            try call(method, path + "?terminate=true&signal=SIGKILL")
            try call(method, path, body: #"{"terminate": true, "signal": "SIGTERM"}"#)
            try call(method, path, body: "{")
            try call(method, path, body: #"{"terminate": true}"#, contentType: "text/plain")
            try call(method, path + "?terminate=maybe")
            try call(method, path, body: #"{"signal": "SIGNOPE"}"#)
        }
        try call("DELETE", "/tasks/" + String(repeating: "i", count: 256))
        try call("POST", "/tasks/" + String(repeating: "i", count: 256) + "/revoke")

        // The document workflow.
        let process = try call("POST", "/process", body: #"{"blob_path": "docs/a.txt", "threshold": 0.7}"#)
        XCTAssertEqual(process.status, 200, process.text)
        try call("POST", "/process/?blob_path=docs/b.txt&threshold=0.2")
        try call("POST", "/process", body: "{")
        try call("POST", "/process", body: "{}")
        try call("POST", "/process", body: #"{"blob_path": "x"}"#, contentType: "text/plain")
        try call("POST", "/process?blob_path=x&threshold=2")
        try call("GET", "/status/\(try XCTUnwrap(process.json?["task_id"]?.stringValue, process.text))")

        // The schedule.
        let entry =
            #"{"task": "add", "schedule": {"crontab": "*/5 3 * * *", "timezone": "Europe/Berlin"}, "args": [1, 2]}"#
        XCTAssertEqual(try call("PUT", "/schedule/openapi%20entry", body: entry).status, 201)
        XCTAssertEqual(
            try call("PUT", "/schedule/openapi%20entry", body: #"{"task": "add", "schedule": 5}"#).status, 200)
        try call("PUT", "/schedule/bad", body: #"{"task": "add"}"#)
        try call("PUT", "/schedule/a%2Fb", body: entry)
        try call("PUT", "/schedule/typed", body: entry, contentType: "text/plain")
        XCTAssertEqual(try call("GET", "/schedule").status, 200)
        XCTAssertEqual(try call("DELETE", "/schedule/openapi%20entry").status, 204)
        XCTAssertEqual(try call("DELETE", "/schedule/openapi%20entry").status, 404)
        try call("DELETE", "/schedule/a%2Fb")

        // Operations: stats, health, metrics, the page, routes that reach no operation.
        let bothWorkers = try eventually(timeout: 15, interval: 0.2) {
            try call("GET", "/stats").json?["workers"]?.arrayValue?.count == 2
        }
        XCTAssertTrue(bothWorkers, "GET /stats lists the Celeris and the Python worker (their schema is checked)")
        try call("GET", "/health", auth: .none)
        try call("GET", "/metrics", auth: .none)
        try call("GET", "/", auth: .none)
        try call("GET", "/index.html", auth: .none)
        try call("GET", "/tasks")
        try call("PUT", "/status/x")
        try call("GET", "/schedule/x")
        try call("GET", "/no-such-route")

        // The WebSocket: handshake, a subscription's first state, a refused command.
        let ws = try RawSocket(port: port)
        try ws.send(
            requestText("GET", "/ws", body: nil, contentType: nil, auth: .all, host: nil, headers: Self.upgrade))
        let upgraded = try ws.readResponse()
        record("GET", "/ws", upgraded)
        XCTAssertEqual(upgraded.status, 101)
        try ws.send(WSFrame.make(opcode: 1, payload: Array(#"{"subscribe": ["\#(createdId)"]}"#.utf8)))
        message("WebSocketTaskUpdate", try textFrame(ws))
        let many = (0...100).map { "\"t\($0)\"" }.joined(separator: ", ")
        try ws.send(WSFrame.make(opcode: 1, payload: Array(#"{"subscribe": [\#(many)]}"#.utf8)))
        message("WebSocketError", try textFrame(ws))
        try call("GET", "/ws")
        try call("GET", "/ws", headers: [("Upgrade", "websocket"), ("Connection", "Upgrade")])

        // Checks every route shares.
        let ops = operations(taskId: "openapi-shared")
        let bigBody = "[" + String(repeating: "0,", count: 2500) + "0]"
        for op in ops {
            try call(op.method, op.path, body: op.body, host: "evil.example", headers: op.headers)
            try call(op.method, op.path, body: op.body, auth: .none, headers: op.headers)
            try call(op.method, op.path, body: op.body, auth: .scopes(["nothing"]), headers: op.headers)
            try call(op.method, op.path, body: bigBody, headers: op.headers)
            try call(
                op.method, op.path, body: op.body,
                headers: op.headers + [("X-Pad", String(repeating: "p", count: 5000))])
            if op.method == "POST" || op.path == "/ws" {
                try call(op.method, op.path, body: op.body, headers: op.headers + [("Origin", "http://evil.example")])
            }
        }
        // 408: requests that never finish arriving.
        var partial: [(op: (method: String, path: String), socket: RawSocket)] = []
        for op in ops {
            let s = try RawSocket(port: port, timeout: 10)
            try s.send("\(op.method) \(op.path) HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            partial.append(((op.method, op.path), s))
        }
        for (op, s) in partial { record(op.method, op.path, try s.readResponse()) }
        partial.removeAll()
        // 503 too_many_connections: every slot held by a connection that sent nothing yet
        // (for the 6 s header timeout: these calls take milliseconds).
        var held: [RawSocket] = []
        for _ in 0..<maxConnections { held.append(try RawSocket(port: port)) }
        for op in ops {
            let r = try call(op.method, op.path, body: op.body, headers: op.headers)
            XCTAssertEqual(r.status, 503, "\(op.method) \(op.path) with every connection slot held")
        }
        held.removeAll()

        // Redis gone: 503 where a route needs it.
        redis.stop()
        XCTAssertTrue(
            eventually(timeout: 15) { (try? HTTPClient.request("GET", port: port, path: "/health").status) == 503 })
        for op in ops { try call(op.method, op.path, body: op.body, headers: op.headers) }

        // The checks.
        let report = try check(document: document, routes: try routedPaths())
        let errors = report["errors"]?.arrayValue?.compactMap(\.stringValue) ?? ["no errors list in \(report)"]
        XCTAssertEqual(errors, [], "answers that do not match the document:\n" + errors.joined(separator: "\n"))
        let documentedOperations = report["operations"]?.arrayValue ?? []
        XCTAssertGreaterThanOrEqual(documentedOperations.count, 14)
        for op in documentedOperations {
            guard let method = op["method"]?.stringValue, let template = op["path"]?.stringValue else {
                XCTFail("bad operation \(op)")
                continue
            }
            let path = template.replacingOccurrences(
                of: #"\{[^}]+\}"#, with: "some-id", options: .regularExpression)
            guard case .route = FrontendRoute.resolve(method: method, path: path) else {
                XCTFail("the document describes \(method) \(template), which the frontend does not route")
                continue
            }
        }
        let unexercised = Set(report["unexercised"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        XCTAssertEqual(
            unexercised, Self.unreachable,
            "documented answers never seen (or listed unreachable but seen):\n"
                + unexercised.symmetricDifference(Self.unreachable).sorted().joined(separator: "\n"))
    }

    /// `/openapi.json` is a GET route of its own, labelled for metrics, open (no token scope).
    func testTheDocumentRouteIsOpen() throws {
        XCTAssertEqual(FrontendRoute.resolve(method: "GET", path: "/openapi.json"), .route(.openAPI))
        XCTAssertEqual(FrontendRoute.resolve(method: "POST", path: "/openapi.json"), .methodNotAllowed(allow: "GET"))
        XCTAssertEqual(FrontendRoute.label(path: "/openapi.json"), "/openapi.json")
        XCTAssertNil(FrontendRoute.scope(label: "/openapi.json"))
        let document = try JSONParser.parse(OpenAPIDocument.json)
        XCTAssertEqual(document["openapi"], "3.1.0")
        XCTAssertEqual(document["info"]?["version"], .string(CelerisVersion.current))
    }

    /// Documented answers this test cannot bring about, and why.
    static let unreachable: Set<String> = [
        // The command line always serves metrics; 404 is for an app built without them.
        "GET /metrics 404"
    ]
}
