import FastCore
import Foundation
import Logging
import XCTest

/// The route table, error answers and the app's routes, in-process: a
/// `FrontendLoops` in this test process against the test's Redis.
final class FrontendRouteTests: RedisTestCase {
    func testRouteTable() {
        XCTAssertEqual(FrontendRoute.resolve(method: "POST", path: "/tasks"), .route(.tasks))
        XCTAssertEqual(FrontendRoute.resolve(method: "POST", path: "/process"), .route(.process))
        XCTAssertEqual(FrontendRoute.resolve(method: "POST", path: "/process/"), .route(.process))
        XCTAssertEqual(FrontendRoute.resolve(method: "GET", path: "/health"), .route(.health))
        XCTAssertEqual(FrontendRoute.resolve(method: "GET", path: "/metrics"), .route(.metrics))
        XCTAssertEqual(FrontendRoute.resolve(method: "GET", path: "/ws"), .route(.webSocket))
        XCTAssertEqual(FrontendRoute.resolve(method: "GET", path: "/status/abc"), .route(.status(taskId: "abc")))
        XCTAssertEqual(FrontendRoute.resolve(method: "GET", path: "/status/"), .route(.status(taskId: "")))
        XCTAssertEqual(FrontendRoute.resolve(method: "GET", path: "/tasks"), .methodNotAllowed(allow: "POST"))
        XCTAssertEqual(FrontendRoute.resolve(method: "DELETE", path: "/process"), .methodNotAllowed(allow: "POST"))
        XCTAssertEqual(FrontendRoute.resolve(method: "POST", path: "/health"), .methodNotAllowed(allow: "GET"))
        XCTAssertEqual(FrontendRoute.resolve(method: "PUT", path: "/status/x"), .methodNotAllowed(allow: "GET"))
        XCTAssertEqual(FrontendRoute.resolve(method: "POST", path: "/ws"), .methodNotAllowed(allow: "GET"))
        XCTAssertEqual(FrontendRoute.resolve(method: "GET", path: "/"), .route(.dashboard))
        XCTAssertEqual(FrontendRoute.resolve(method: "GET", path: "/index.html"), .route(.dashboard))
        XCTAssertEqual(FrontendRoute.resolve(method: "POST", path: "/"), .methodNotAllowed(allow: "GET"))
        XCTAssertEqual(FrontendRoute.resolve(method: "GET", path: "/stats"), .route(.stats))
        XCTAssertEqual(FrontendRoute.resolve(method: "GET", path: "/stats/"), .notFound)
        XCTAssertEqual(FrontendRoute.resolve(method: "GET", path: "/statusx"), .notFound)
        XCTAssertEqual(FrontendRoute.resolve(method: "POST", path: "/tasks/"), .notFound)
    }

    func testLabelsAndScopes() {
        XCTAssertEqual(FrontendRoute.label(path: "/status/abc"), "/status")
        XCTAssertEqual(FrontendRoute.label(path: "/process/"), "/process")
        XCTAssertEqual(FrontendRoute.label(path: "/nope"), "other")
        XCTAssertEqual(FrontendRoute.scope(label: "/tasks"), "tasks")
        XCTAssertEqual(FrontendRoute.scope(label: "other"), "tasks", "unknown paths need a token too")
        XCTAssertEqual(FrontendRoute.scope(label: "/ws"), "ws")
        XCTAssertEqual(FrontendRoute.scope(label: "/status"), "status")
        XCTAssertEqual(FrontendRoute.scope(label: "/process"), "process")
        XCTAssertNil(FrontendRoute.scope(label: "/health"))
        XCTAssertNil(FrontendRoute.scope(label: "/metrics"))
        XCTAssertEqual(FrontendRoute.label(path: "/"), "/")
        XCTAssertEqual(FrontendRoute.label(path: "/index.html"), "/")
        XCTAssertNil(FrontendRoute.scope(label: "/"), "the dashboard page holds no data")
        XCTAssertEqual(FrontendRoute.scope(label: "/stats"), "status")
    }

    func testErrorAnswersNameTheLimitBroken() {
        let limits = HTTPServer.Limits(
            maxHeaderBytes: 100, maxBodyBytes: 200, headerTimeoutMs: 300, maxConnections: 4)
        XCTAssertEqual(
            FrontendError.request(.headersTooLarge, limits: limits),
            FrontendError(431, "headers_too_large", "request headers exceed 100 bytes", close: true))
        XCTAssertEqual(
            FrontendError.request(.bodyTooLarge, limits: limits),
            FrontendError(413, "body_too_large", "request body exceeds 200 bytes", close: true))
        XCTAssertEqual(
            FrontendError.request(.timeout, limits: limits),
            FrontendError(408, "request_timeout", "request not received within 300 ms", close: true))
        XCTAssertEqual(
            FrontendError.request(.overloaded, limits: limits),
            FrontendError(
                503, "too_many_connections", "over 4 open connections", headers: ["Retry-After": "1"], close: true))
        XCTAssertEqual(FrontendError.request(.malformed, limits: limits).status, 400)
        XCTAssertEqual(FrontendError.methodNotAllowed(allow: "POST").headers, ["Allow": "POST"])
        XCTAssertEqual(FrontendError.notFound("x").body, ["error": "not_found", "detail": "x"])
        XCTAssertEqual(
            FrontendError.invalid(.init(status: 400, detail: "d"), invalidCode: "invalid_task").code, "bad_request")
        XCTAssertEqual(
            FrontendError.invalid(.init(status: 422, detail: "d"), invalidCode: "invalid_task").code, "invalid_task")
        XCTAssertEqual(FrontendError.auth(.unauthorized("no")).map(\.status), 401)
        XCTAssertEqual(FrontendError.auth(.forbidden("no")).map(\.status), 403)
        XCTAssertNil(FrontendError.auth(.allowed("alice")))
    }

    /// The app in this process: 404, 405 with Allow, a task queued, its status, health.
    func testRoutesInProcess() throws {
        var logger = Logger(label: "frontend-in-process")
        logger.logLevel = .warning
        let frontend = try FrontendLoops(count: 1, endpoint: redis.endpoint, settings: .init(), logger: logger)
        let port = try frontend.start(host: "127.0.0.1", port: 0)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            frontend.run()
            done.signal()
        }
        thread.start()
        defer {
            frontend.requestStop()
            XCTAssertEqual(done.wait(timeout: .now() + 10), .success, "the loop stopped")
        }
        XCTAssertTrue(
            eventually { (try? HTTPClient.request("GET", port: port, path: "/health"))?.status == 200 }, "broker up")

        let missing = try HTTPClient.request("GET", port: port, path: "/nope")
        XCTAssertEqual(missing.status, 404)
        XCTAssertEqual(missing.json, ["error": "not_found", "detail": "no route for GET /nope"])

        let wrong = try HTTPClient.request("GET", port: port, path: "/tasks")
        XCTAssertEqual(wrong.status, 405)
        XCTAssertEqual(wrong.headers["allow"], "POST")
        XCTAssertEqual(wrong.json?["error"], "method_not_allowed")
        let wrongGet = try HTTPClient.request("POST", port: port, path: "/status/abc")
        XCTAssertEqual(wrongGet.status, 405)
        XCTAssertEqual(wrongGet.headers["allow"], "GET")

        XCTAssertEqual(try HTTPClient.request("POST", port: port, path: "/tasks", body: "{").status, 400)
        XCTAssertEqual(try HTTPClient.request("POST", port: port, path: "/tasks", body: "[]").status, 422)
        let queued = try HTTPClient.request(
            "POST", port: port, path: "/tasks", body: #"{"task": "add", "args": [1, 2]}"#)
        XCTAssertEqual(queued.status, 200)
        let id = try XCTUnwrap(queued.json?["task_id"]?.stringValue)
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 1)
        XCTAssertEqual(
            try HTTPClient.request("GET", port: port, path: "/status/\(id)").json,
            ["status": "Pending...", "state": "PENDING"])
        XCTAssertEqual(try HTTPClient.request("GET", port: port, path: "/status/").status, 404)
        XCTAssertEqual(try HTTPClient.request("GET", port: port, path: "/metrics").status, 404, "metrics off")
        XCTAssertEqual(try HTTPClient.request("GET", port: port, path: "/ws").status, 400, "not an upgrade")
    }
}
