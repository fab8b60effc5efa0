import FastCore
import Foundation
import XCTest

/// `GET /schedule`, `PUT` and `DELETE /schedule/{name}` on a real frontend and redis-server:
/// run-time entries are validated as a schedule file's entries and stored normalized in
/// `celeris:beat:dynamic` with `celeris:beat:dynamic:version` bumped; the state the schedulers
/// write is read back as JSON; every route needs the token scope `schedule`.
final class ScheduleAPITests: FrontendTestCase {
    let auth = BearerAuth(secret: "schedule-secret")

    override var frontendFlags: [String] { ["--auth-secret", "schedule-secret", "--max-body-bytes", "100000"] }

    func token(_ scopes: [String]) -> String { auth.issue(subject: "ops", ttl: 3600, scopes: scopes) }

    /// A request with a `schedule` token unless `token` names another.
    func call(_ method: String, _ path: String, body: String? = nil, token: String? = nil) throws -> HTTPResponse {
        try HTTPClient.request(
            method, port: port, path: path, body: body,
            headers: ["Authorization": "Bearer \(token ?? self.token(["schedule"]))"])
    }

    func version() throws -> Int64? { try client.command("GET", BeatKeys.dynamicVersion).text.flatMap { Int64($0) } }

    func stored(_ name: String) throws -> String? { try client.command("HGET", BeatKeys.dynamic, name).text }

    // MARK: - PUT

    func testPutStoresTheNormalizedEntryAndBumpsTheVersion() throws {
        let body = #"""
            {"task": "report", "schedule": {"crontab": {"minute": "*/5", "hour": 3}, "timezone": "Europe/Berlin"},
             "args": [1, "x"], "kwargs": {"b": 2, "a": 1}, "options": {"queue": "ops", "priority": null}}
            """#
        let created = try call("PUT", "/schedule/nightly%20report", body: body)
        XCTAssertEqual(created.status, 201, created.text)
        let expected: JSON = [
            "task": "report", "schedule": ["crontab": "*/5 3 * * *", "timezone": "Europe/Berlin"],
            "args": [1, "x"], "kwargs": ["b": 2, "a": 1], "options": ["queue": "ops"], "catch_up": "once",
        ]
        XCTAssertEqual(created.json, expected)
        XCTAssertEqual(try stored("nightly report"), created.text, "the hash holds what was answered")
        let kwargsOrder = try XCTUnwrap(created.json?["kwargs"]?.objectPairs).map(\.key)
        XCTAssertEqual(kwargsOrder, ["b", "a"], "kwargs keep the body's order")
        XCTAssertEqual(try version(), 1)

        let replaced = try call("PUT", "/schedule/nightly%20report", body: #"{"task": "report", "schedule": 10.0}"#)
        XCTAssertEqual(replaced.status, 200, replaced.text)
        let replacement: JSON = [
            "task": "report", "schedule": 10, "args": [], "kwargs": [:], "options": [:], "catch_up": "once",
        ]
        XCTAssertEqual(replaced.json, replacement)
        XCTAssertEqual(try stored("nightly report"), replaced.text)
        XCTAssertEqual(try version(), 2)
        XCTAssertEqual(try client.command("HLEN", BeatKeys.dynamic).integer, 1)
    }

    func testInvalidEntriesAre400NamingThePathAndWriteNothing() throws {
        let cases: [(body: String, detailPrefix: String)] = [
            ("", "not JSON"),
            (" \n ", "not JSON"),
            ("not json", "not JSON"),
            (#"{"task": "add", "schedule": 10"#, "not JSON"),
            ("[1, 2]", "must be an entry object"),
            (#"{"schedule": 10}"#, "task: "),
            (#"{"task": 5, "schedule": 10}"#, "task: "),
            (#"{"task": "add"}"#, "schedule: "),
            (#"{"task": "add", "schedule": "10"}"#, "schedule: "),
            (#"{"task": "add", "schedule": -1}"#, "schedule: "),
            (#"{"task": "add", "schedule": 10, "args": {}}"#, "args: "),
            (#"{"task": "add", "schedule": 10, "kwargs": [1]}"#, "kwargs: "),
            (#"{"task": "add", "schedule": 10, "options": {"priority": 12}}"#, "options.priority: "),
            (#"{"task": "add", "schedule": 10, "options": {"queue": ""}}"#, "options.queue: "),
            (#"{"task": "add", "schedule": 10, "catch_up": "always"}"#, "catch_up: "),
            (#"{"task": "add", "schedule": 10, "bogus": 1}"#, "bogus: "),
            (#"{"task": "add", "schedule": {"crontab": "61 * * * *"}}"#, "schedule.crontab: "),
            (#"{"task": "add", "schedule": {"crontab": "* * 31 2 *"}}"#, "schedule.crontab: "),
            (#"{"task": "add", "schedule": {"crontab": "* * * *"}}"#, "schedule.crontab: "),
            (#"{"task": "add", "schedule": {"crontab": "* * * * *", "timezone": "Mars/Base"}}"#, "schedule.timezone: "),
            (String(repeating: "[", count: 5000), "not JSON"),
            (
                #"{"task": "add", "schedule": 10, "args": [""# + String(repeating: "x", count: 70_000) + #""]}"#,
                "an entry is"
            ),
        ]
        for (body, prefix) in cases {
            let r = try call("PUT", "/schedule/bad", body: body)
            XCTAssertEqual(r.status, 400, "\(body.prefix(80)): \(r.text)")
            XCTAssertEqual(r.json?["error"], "invalid_entry", r.text)
            let detail = r.json?["detail"]?.stringValue ?? ""
            XCTAssertTrue(detail.hasPrefix(prefix), "\(body.prefix(80)): detail \(detail)")
        }
        XCTAssertEqual(try client.command("EXISTS", BeatKeys.dynamic, BeatKeys.dynamicVersion).integer, 0)
        XCTAssertTrue(frontend.isRunning)
    }

    func testBadNamesMethodsAndBodiesAreRefusedWithJSON() throws {
        let good = #"{"task": "add", "schedule": 1}"#
        for path in [
            "/schedule/", "/schedule/a%2Fb", "/schedule/a/b", "/schedule/" + String(repeating: "n", count: 201),
        ] {
            let r = try call("PUT", path, body: good)
            XCTAssertEqual(r.status, 400, "\(path.prefix(40)): \(r.text)")
            XCTAssertEqual(r.json?["error"], "invalid_name")
            XCTAssertEqual(try call("DELETE", path).status, 400, String(path.prefix(40)))
        }
        // 200 bytes is the limit, counted in UTF-8 after percent-decoding (100 × "é").
        let wide = String(repeating: "é", count: 100)
        XCTAssertEqual(
            try call("PUT", "/schedule/" + String(repeating: "%C3%A9", count: 100), body: good).status, 201)
        XCTAssertNotNil(try stored(wide))
        XCTAssertEqual(
            try call("PUT", "/schedule/" + String(repeating: "%C3%A9", count: 100) + "x", body: good).status, 400)

        let get = try call("GET", "/schedule/x")
        XCTAssertEqual(get.status, 405)
        XCTAssertEqual(get.headers["allow"], "PUT, DELETE")
        let post = try call("POST", "/schedule", body: good)
        XCTAssertEqual(post.status, 405)
        XCTAssertEqual(post.headers["allow"], "GET")

        let s = try RawSocket(port: port)
        try s.send(
            "PUT /schedule/form HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token(["schedule"]))\r\n"
                + "Content-Type: text/plain\r\nContent-Length: \(good.utf8.count)\r\n\r\n\(good)")
        let typed = try s.readResponse()
        XCTAssertEqual(typed.status, 415, typed.text)

        let huge = try call("PUT", "/schedule/huge", body: String(repeating: " ", count: 120_000))
        XCTAssertEqual(huge.status, 413, "over the frontend's body cap")
        XCTAssertNotNil(huge.json?["detail"]?.stringValue)
        XCTAssertEqual(try client.command("HKEYS", BeatKeys.dynamic), .array([.string(Array(wide.utf8))]))
    }

    // MARK: - DELETE

    func testDeleteAnswers204ThenThe404() throws {
        XCTAssertEqual(try call("PUT", "/schedule/tick", body: #"{"task": "noop", "schedule": 5}"#).status, 201)
        XCTAssertEqual(try call("PUT", "/schedule/tock", body: #"{"task": "noop", "schedule": 7}"#).status, 201)
        // Two requests on one connection: the 204 carries no body, so the next answer reads cleanly.
        let s = try RawSocket(port: port)
        let auth = "Authorization: Bearer \(token(["schedule"]))\r\n"
        try s.send(
            "DELETE /schedule/tick HTTP/1.1\r\nHost: 127.0.0.1\r\n\(auth)\r\n"
                + "GET /schedule HTTP/1.1\r\nHost: 127.0.0.1\r\n\(auth)\r\n")
        let deleted = try s.readResponse()
        XCTAssertEqual(deleted.status, 204, deleted.text)
        XCTAssertEqual(deleted.statusLine, "HTTP/1.1 204 No Content")
        XCTAssertNil(deleted.headers["content-length"], "a 204 has no Content-Length")
        XCTAssertNil(deleted.headers["content-type"])
        let listed = try s.readResponse()
        XCTAssertEqual(listed.status, 200)
        XCTAssertEqual(listed.json?["entries"]?.arrayValue?.compactMap { $0["name"]?.stringValue }, ["tock"])
        XCTAssertNil(try stored("tick"))
        XCTAssertNotNil(try stored("tock"))
        XCTAssertEqual(try version(), 3)
        let again = try call("DELETE", "/schedule/tick")
        XCTAssertEqual(again.status, 404, again.text)
        XCTAssertEqual(again.json?["error"], "not_found")
        XCTAssertEqual(try version(), 3, "nothing changed, no new version")
        // A file entry (scheduled, not run-time) is not deleted through the API.
        try client.command("SADD", BeatKeys.names, "from-file")
        try client.command("HSET", BeatKeys.entry("from-file"), "source", "file", "spec", "{}")
        XCTAssertEqual(try call("DELETE", "/schedule/from-file").status, 404)
        XCTAssertEqual(try client.command("EXISTS", BeatKeys.entry("from-file")).integer, 1)
    }

    // MARK: - GET

    func testGetWithNoSchedulerIsEmpty() throws {
        let r = try call("GET", "/schedule")
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(r.json, ["leader": nil, "schedulers": [], "entries": []])
    }

    func testGetRendersTheStateTheSchedulersWrote() throws {
        let leader = "beat@h:1:abcd"
        let addSpec = #"{"task":"add","schedule":10,"args":[2,3],"kwargs":{},"options":{},"catch_up":"once"}"#
        let nightlySpec =
            #"{"task":"report","schedule":{"crontab":"0 3 * * *"},"args":[],"kwargs":{},"options":{},"catch_up":"skip"}"#
        let pendingSpec = #"{"task":"noop","schedule":1,"args":[],"kwargs":{},"options":{},"catch_up":"once"}"#
        try client.command("SET", BeatKeys.leader, leader)
        try client.command("HSET", BeatKeys.leadership, "id", leader, "since", "1764806395000", "changes", "3")
        try client.command(
            "ZADD", BeatKeys.schedulers, "1764806402500", "beat@g:2:0001", "1764806401000", leader)
        try client.command("SADD", BeatKeys.names, "add-10s", "nightly")
        try client.command(
            "HSET", BeatKeys.entry("add-10s"), "due", "1764806400000", "next", "1764806410000", "sent_at",
            "1764806400123", "task_id", "t-1", "count", "7", "spec", addSpec, "source", "file")
        try client.command(
            "HSET", BeatKeys.entry("nightly"), "next", "1764817200000", "spec", nightlySpec, "source", "redis")
        // nightly is scheduled already (shown once, from its state); b-pending is not yet.
        try client.command("HSET", BeatKeys.dynamic, "nightly", nightlySpec, "b-pending", pendingSpec)

        let r = try call("GET", "/schedule")
        XCTAssertEqual(r.status, 200, r.text)
        let expected: JSON = [
            "leader": ["id": .string(leader), "since": "2025-12-03T23:59:55.000000+00:00"],
            "schedulers": [
                ["id": "beat@g:2:0001", "seen_at": "2025-12-04T00:00:02.500000+00:00"],
                ["id": .string(leader), "seen_at": "2025-12-04T00:00:01.000000+00:00"],
            ],
            "entries": [
                [
                    "name": "add-10s", "source": "file",
                    "entry": [
                        "task": "add", "schedule": 10, "args": [2, 3], "kwargs": [:], "options": [:],
                        "catch_up": "once",
                    ],
                    "next_run": "2025-12-04T00:00:10.000000+00:00", "last_run": "2025-12-04T00:00:00.000000+00:00",
                    "last_sent_at": "2025-12-04T00:00:00.123000+00:00", "total_run_count": 7,
                    "last_task_id": "t-1",
                ],
                [
                    "name": "b-pending", "source": "redis",
                    "entry": [
                        "task": "noop", "schedule": 1, "args": [], "kwargs": [:], "options": [:], "catch_up": "once",
                    ],
                    "next_run": nil, "last_run": nil, "last_sent_at": nil, "total_run_count": 0, "last_task_id": nil,
                ],
                [
                    "name": "nightly", "source": "redis",
                    "entry": [
                        "task": "report", "schedule": ["crontab": "0 3 * * *"], "args": [], "kwargs": [:],
                        "options": [:], "catch_up": "skip",
                    ],
                    "next_run": "2025-12-04T03:00:00.000000+00:00", "last_run": nil, "last_sent_at": nil,
                    "total_run_count": 0, "last_task_id": nil,
                ],
            ],
        ]
        XCTAssertEqual(r.json, expected, r.text)
        XCTAssertTrue(r.text.hasPrefix(#"{"leader": {"id": "beat@h:1:abcd", "since": "#), r.text)

        // A leader whose leadership record is another's: no `since`. No leader: null.
        try client.command("SET", BeatKeys.leader, "beat@g:2:0001")
        XCTAssertEqual(try call("GET", "/schedule").json?["leader"], ["id": "beat@g:2:0001", "since": nil])
        try client.command("DEL", BeatKeys.leader)
        XCTAssertEqual(try call("GET", "/schedule").json?["leader"], .null)
    }

    func testAPutEntryIsListedUntilAScheduler() throws {
        XCTAssertEqual(try call("PUT", "/schedule/every-2s", body: #"{"task": "noop", "schedule": 2}"#).status, 201)
        let entries = try XCTUnwrap(try call("GET", "/schedule").json?["entries"]?.arrayValue)
        XCTAssertEqual(entries.count, 1)
        XCTAssertEqual(entries.first?["name"], "every-2s")
        XCTAssertEqual(entries.first?["source"], "redis")
        XCTAssertEqual(entries.first?["entry"]?["schedule"], 2)
        XCTAssertEqual(entries.first?["next_run"], .null)
    }

    func testARunningSchedulerSendsAPutEntryAndDropsItOnDelete() throws {
        let beat = try BeatProcess(
            redis: redis, schedule: nil, name: "beat@api", leaseMs: 1000, extra: ["--reload-interval", "0.05"])
        defer { beat.stop() }
        XCTAssertTrue(eventually { (try? self.client.command("EXISTS", BeatKeys.leader).integer) == 1 }, beat.log)
        XCTAssertEqual(try call("PUT", "/schedule/tick", body: #"{"task": "noop", "schedule": 0.1}"#).status, 201)
        var view: JSON?
        let sent = eventually {
            view = try? self.call("GET", "/schedule").json?["entries"]?[0]
            return (view?["total_run_count"]?.intValue ?? 0) >= 2
        }
        XCTAssertTrue(sent, "\(String(describing: view))\n\(beat.log)")
        XCTAssertEqual(view?["source"], "redis")
        XCTAssertEqual(view?["entry"]?["task"], "noop")
        XCTAssertNotNil(view?["next_run"]?.stringValue)
        XCTAssertNotNil(view?["last_task_id"]?.stringValue)
        XCTAssertGreaterThanOrEqual(try client.command("LLEN", "celery").integer ?? 0, 2)
        XCTAssertEqual(try call("DELETE", "/schedule/tick").status, 204)
        let dropped = eventually { (try? self.call("GET", "/schedule").json?["entries"]) == [] }
        XCTAssertTrue(dropped, beat.log)
        XCTAssertEqual(try client.command("EXISTS", BeatKeys.entry("tick")).integer, 0)
    }

    // MARK: - Auth and Redis

    func testEveryRouteNeedsTheScheduleScope() throws {
        let others = token(["tasks", "status", "ws:all"])
        let body = #"{"task": "noop", "schedule": 2}"#
        for (method, path) in [("GET", "/schedule"), ("PUT", "/schedule/x"), ("DELETE", "/schedule/x")] {
            let forbidden = try call(method, path, body: method == "PUT" ? body : nil, token: others)
            XCTAssertEqual(forbidden.status, 403, "\(method) \(path): \(forbidden.text)")
            let anonymous = try HTTPClient.request(method, port: port, path: path, body: method == "PUT" ? body : nil)
            XCTAssertEqual(anonymous.status, 401, "\(method) \(path)")
        }
        XCTAssertEqual(try client.command("EXISTS", BeatKeys.dynamic, BeatKeys.dynamicVersion).integer, 0)
        XCTAssertEqual(try call("PUT", "/schedule/x", body: body).status, 201)
        XCTAssertEqual(try call("GET", "/schedule").status, 200)
        XCTAssertEqual(try call("DELETE", "/schedule/x").status, 204)
    }

    func testRedisDownIs503() throws {
        redis.stop()
        let down = eventually { (try? self.call("GET", "/schedule").status) == 503 }
        XCTAssertTrue(down)
        let put = try call("PUT", "/schedule/x", body: #"{"task": "noop", "schedule": 2}"#)
        XCTAssertEqual(put.status, 503)
        XCTAssertEqual(put.json?["error"], "broker_unavailable")
        XCTAssertEqual(try call("DELETE", "/schedule/x").status, 503)
        XCTAssertTrue(frontend.isRunning)
    }

    // MARK: - Routes

    func testRoutesLabelsAndScopes() {
        XCTAssertEqual(FrontendRoute.resolve(method: "GET", path: "/schedule"), .route(.schedule))
        XCTAssertEqual(FrontendRoute.resolve(method: "PUT", path: "/schedule"), .methodNotAllowed(allow: "GET"))
        XCTAssertEqual(FrontendRoute.resolve(method: "PUT", path: "/schedule/a b"), .route(.scheduleEntry(name: "a b")))
        XCTAssertEqual(FrontendRoute.resolve(method: "DELETE", path: "/schedule/"), .route(.scheduleEntry(name: "")))
        XCTAssertEqual(
            FrontendRoute.resolve(method: "GET", path: "/schedule/a"), .methodNotAllowed(allow: "PUT, DELETE"))
        XCTAssertEqual(FrontendRoute.resolve(method: "GET", path: "/schedules"), .notFound)
        XCTAssertEqual(FrontendRoute.label(path: "/schedule"), "/schedule")
        XCTAssertEqual(FrontendRoute.label(path: "/schedule/x"), "/schedule")
        XCTAssertEqual(FrontendRoute.label(path: "/schedules"), "other")
        XCTAssertEqual(FrontendRoute.scope(label: "/schedule"), "schedule")
    }
}
