import FastCore
import Foundation
import XCTest

/// Token scopes map to tasks (`tasks:NAME`) and to what a WebSocket sees
/// (`ws`: only its subscriptions; `ws:all`: every task); an expired token's WebSocket is closed.
final class FrontendScopeTests: FrontendTestCase {
    let auth = BearerAuth(secret: "scope-secret")

    override var frontendFlags: [String] { ["--auth-secret", "scope-secret", "--ws-ping-ms", "100"] }

    func token(_ scopes: [String], ttl: Double = 3600) -> String {
        auth.issue(subject: "u", ttl: ttl, scopes: scopes)
    }

    func post(_ body: String?, token: String) throws -> HTTPResponse {
        try HTTPClient.request(
            "POST", port: port, path: "/tasks", body: body, headers: ["Authorization": "Bearer \(token)"])
    }

    func webSocket(_ token: String) throws -> RawSocket {
        let s = try RawSocket(port: port)
        try s.send(
            "GET /ws?token=\(token) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        let r = try s.readResponse()
        guard r.status == 101 else { throw TestFailure("handshake: \(r.statusLine) \(r.text)") }
        return s
    }

    func publish(_ task: String) throws {
        try client.command("PUBLISH", "task_status", #"{"task_id": "\#(task)", "state": "PROGRESS"}"#)
    }

    func testTaskScopesNarrowTheAllowList() throws {
        let onlyCreate = token(["tasks:create_task"])
        XCTAssertEqual(try post(nil, token: onlyCreate).status, 200)
        let add = try post(#"{"task": "add", "args": [1, 2]}"#, token: onlyCreate)
        XCTAssertEqual(add.status, 403)
        XCTAssertEqual(add.json?["error"], "forbidden")
        XCTAssertEqual(
            try HTTPClient.request(
                "GET", port: port, path: "/status/x", headers: ["Authorization": "Bearer \(onlyCreate)"]
            ).status, 403)
        let tasks = token(["tasks"])
        XCTAssertEqual(try post(#"{"task": "add", "args": [1, 2]}"#, token: tasks).status, 200)
        let fetch = try post(#"{"task": "fetch_documents_task", "args": ["/"]}"#, token: tasks)
        XCTAssertEqual(fetch.status, 403, "the token narrows the allow-list, never widens it")
        XCTAssertEqual(fetch.json?["error"], "task_not_allowed")
        XCTAssertEqual(
            try post(#"{"task": "fetch_documents_task", "args": ["/"]}"#, token: token(["tasks:fetch_documents_task"]))
                .status, 403)
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 2)
        XCTAssertEqual(try client.command("LLEN", "fetch_queue").integer, 0)
    }

    func testAWsTokenSeesOnlyItsSubscriptionsUnlessWsAll() throws {
        let scoped = try webSocket(token(["ws"]))
        let all = try webSocket(token(["ws:all"]))
        try publish("someone-elses")
        XCTAssertEqual(try WebSocketFanOutTests.nextText(all)["task_id"], "someone-elses")
        try scoped.send(WSFrame.make(opcode: 0x1, payload: Array(#"{"subscribe": ["mine"]}"#.utf8)))
        // The first message the scoped client gets is its subscription's current state:
        // the earlier broadcast was not sent to it.
        let first = try WebSocketFanOutTests.nextText(scoped)
        XCTAssertEqual(first["task_id"], "mine")
        XCTAssertEqual(first["state"], "PENDING")
        try publish("other")
        try publish("mine")
        // A subscriber follows its task's result channel (task_status goes to clients without subscriptions).
        let done = ResultRecord(taskId: "mine", state: .success, result: 1, dateDone: 1).serialized()
        _ = try client.pipeline([
            ["SETEX", ResultRecord.key("mine"), "60", done], ["PUBLISH", ResultRecord.key("mine"), done],
        ])
        let update = try WebSocketFanOutTests.nextText(scoped)
        XCTAssertEqual(update["task_id"], "mine")
        XCTAssertEqual(update["state"], "SUCCESS")
        XCTAssertEqual(try WebSocketFanOutTests.nextText(all)["task_id"], "other")
        XCTAssertEqual(try WebSocketFanOutTests.nextText(all)["task_id"], "mine")
    }

    func testAWebSocketIsClosedWhenItsTokenExpires() throws {
        let ws = try webSocket(token(["ws"], ttl: 2))
        var code = 0
        while code == 0 {
            let f = try WSFrame.read(ws)  // pings every 100 ms; the socket's read timeout bounds the wait
            if f.opcode == 0x9 { try ws.send(WSFrame.make(opcode: 0xA, payload: f.payload)) }
            if f.opcode == 0x8 { code = WSFrame.closeCode(f.payload) }
        }
        XCTAssertEqual(code, 1008)
    }
}
