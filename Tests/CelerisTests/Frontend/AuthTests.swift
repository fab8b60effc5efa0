import FastCore
import Foundation
import XCTest

/// Bearer tokens (HMAC, expiry, scopes) on HTTP and on the WebSocket upgrade.
final class AuthTests: RedisTestCase {
    let secret = "test-secret-\(UUID().uuidString)"

    func issue(_ subject: String, scope: String = "*", ttl: String = "3600") throws -> String {
        let p = try Spawned(
            try TestPaths.executable("celeris-frontend"),
            ["--auth-secret", secret, "--issue-token", subject, "--token-scope", scope, "--token-ttl=\(ttl)"],
            name: "issue")
        p.process.waitUntilExit()
        return p.log.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testTokensGuardRoutesAndTheWebSocketUpgrade() throws {
        let port = freePort()
        let frontend = try CelerisProcess.frontend(redis: redis, port: port, extra: ["--auth-secret", secret])
        let good = try issue("alice")
        let statusOnly = try issue("bob", scope: "status")
        let expired = try issue("carol", ttl: "-10")
        let forged = BearerAuth(secret: "other").issue(subject: "mallory", ttl: 3600, scopes: ["*"])

        XCTAssertEqual(try HTTPClient.request("GET", port: port, path: "/health").status, 200, "health stays open")
        let none = try HTTPClient.request("POST", port: port, path: "/tasks")
        XCTAssertEqual(none.status, 401)
        XCTAssertEqual(none.json?["error"], "unauthorized")
        XCTAssertNotNil(none.headers["www-authenticate"])
        for (token, why) in [(forged, "bad token signature"), (expired, "token expired"), ("x.y", "malformed token")] {
            let r = try HTTPClient.request(
                "POST", port: port, path: "/tasks", headers: ["Authorization": "Bearer \(token)"])
            XCTAssertEqual(r.status, 401)
            XCTAssertEqual(r.json?["detail"]?.stringValue, why)
        }
        XCTAssertEqual(
            try HTTPClient.request(
                "POST", port: port, path: "/tasks", headers: ["Authorization": "Bearer \(statusOnly)"]
            ).status,
            403)
        XCTAssertEqual(
            try HTTPClient.request(
                "GET", port: port, path: "/status/x", headers: ["Authorization": "Bearer \(statusOnly)"]
            )
            .status, 200)
        XCTAssertEqual(
            try HTTPClient.request("POST", port: port, path: "/tasks", headers: ["Authorization": "Bearer \(good)"])
                .status, 200)
        XCTAssertEqual(try HTTPClient.request("POST", port: port, path: "/tasks?token=\(good)").status, 200)

        // WebSocket: a bad token is refused with 401 before the upgrade; ?token= works for browsers.
        let bad = try RawSocket(port: port)
        try bad.send(
            "GET /ws?token=\(forged) HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        XCTAssertEqual(try bad.readResponse().status, 401)
        let ok = try RawSocket(port: port)
        try ok.send(
            "GET /ws?token=\(good) HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        XCTAssertEqual(try ok.readResponse().status, 101)
        XCTAssertTrue(frontend.isRunning)
    }

    /// Revoking and choosing a task id reach other clients' tasks: a token narrowed to
    /// `tasks:NAME` may send NAME but not revoke (403) nor pick a `task_id` (403); a token
    /// with the whole `tasks` scope may do both.
    func testNarrowTokensMayNotRevokeOrChooseTaskIds() throws {
        let port = freePort()
        let frontend = try CelerisProcess.frontend(redis: redis, port: port, extra: ["--auth-secret", secret])
        let narrow = ["Authorization": "Bearer \(try issue("nina", scope: "tasks:create_task"))"]
        let whole = ["Authorization": "Bearer \(try issue("walt", scope: "tasks"))"]

        let sent = try HTTPClient.request("POST", port: port, path: "/tasks", headers: narrow)
        XCTAssertEqual(sent.status, 200, "the narrow token still sends its task")
        let victim = try XCTUnwrap(sent.json?["task_id"]?.stringValue)
        for (method, path) in [("DELETE", "/tasks/\(victim)"), ("POST", "/tasks/\(victim)/revoke?terminate=1")] {
            let r = try HTTPClient.request(method, port: port, path: path, headers: narrow)
            XCTAssertEqual(r.status, 403, "\(method) \(path)")
            XCTAssertEqual(r.json?["error"], "forbidden")
        }
        let chosen = try HTTPClient.request(
            "POST", port: port, path: "/tasks", body: #"{"task": "create_task", "args": [1], "task_id": "\#(victim)"}"#,
            headers: narrow)
        XCTAssertEqual(chosen.status, 403)
        XCTAssertEqual(chosen.json?["error"], "forbidden")
        XCTAssertEqual(
            try HTTPClient.request("POST", port: port, path: "/tasks?task_id=\(victim)", headers: narrow).status, 403)

        XCTAssertEqual(
            try HTTPClient.request("POST", port: port, path: "/tasks?task_id=walt-1", headers: whole).json?["task_id"],
            "walt-1")
        let revoked = try HTTPClient.request("DELETE", port: port, path: "/tasks/\(victim)", headers: whole)
        XCTAssertEqual(revoked.status, 202)
        XCTAssertEqual(revoked.json?["task_id"]?.stringValue, victim)
        XCTAssertTrue(frontend.isRunning)
    }

    func testTokenArithmetic() {
        let auth = BearerAuth(secret: "k")
        let t = auth.issue(subject: "a", ttl: 10, scopes: ["tasks"], now: 1000)
        XCTAssertEqual(auth.check(token: t, scope: "tasks", now: 1005), .allowed("a"))
        XCTAssertEqual(auth.check(token: t, scope: "tasks", now: 1011), .unauthorized("token expired"))
        XCTAssertEqual(auth.check(token: t, scope: "ws", now: 1005), .forbidden("token for a does not allow 'ws'"))
        XCTAssertEqual(auth.check(token: nil, scope: "ws"), .unauthorized("missing bearer token"))
        let narrow = auth.issue(subject: "b", ttl: 10, scopes: ["tasks:create_task", "ws:all"], now: 1000)
        XCTAssertEqual(auth.check(token: narrow, scope: "tasks", now: 1005), .allowed("b"), "tasks:NAME reaches /tasks")
        XCTAssertEqual(auth.check(token: narrow, scope: "ws", now: 1005), .allowed("b"))
        XCTAssertEqual(
            auth.check(token: narrow, scope: "status", now: 1005), .forbidden("token for b does not allow 'status'"))
        let claims = try? auth.verify(token: narrow, now: 1005).get()
        XCTAssertEqual(claims?.expires, 1010)
        XCTAssertEqual(claims?.has("ws:all"), true)
        XCTAssertEqual(claims?.has("tasks"), false)
    }
}
