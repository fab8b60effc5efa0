import FastCore
import XCTest

/// `POST /tasks` and `POST /process` bodies read in-process: good ones, malformed
/// JSON (400), JSON of the wrong shape (422) and the defaults.
final class FrontendTaskSubmissionTests: XCTestCase {
    private func tasks(_ target: String = "/tasks", body: String = "", length: Int = 5) throws(TaskSubmission.Invalid)
        -> TaskSubmission
    {
        try TaskSubmission(
            request: HTTPRequest(method: "POST", target: target, body: Array(body.utf8)), defaultTaskLength: length)
    }

    private func rejection(_ target: String = "/tasks", body: String) -> TaskSubmission.Invalid? {
        do {
            _ = try tasks(target, body: body)
            return nil
        } catch { return error }
    }

    func testGoodBodyIsReadWhole() throws {
        let s = try tasks(
            body: #"{"task": "add", "args": [2, 3], "kwargs": {"z": true}, "queue": "math", "priority": 7, "extra": 1}"#
        )
        XCTAssertEqual(s.task, "add")
        XCTAssertEqual(s.args, [2, 3])
        XCTAssertEqual(s.kwargs.map(\.key), ["z"])
        XCTAssertEqual(s.kwargs.map(\.value), [true])
        XCTAssertEqual(s.queue, "math")
        XCTAssertEqual(s.priority, 7)
        let m = s.message(routes: DocumentTasks.routes)
        XCTAssertEqual(m.task, "add")
        XCTAssertEqual(m.queue, "math")
        XCTAssertEqual(m.args, [2, 3])
    }

    func testNoBodyIsTheTutorialsCreateTaskWithTheDefaultLength() throws {
        let s = try tasks(length: 5)
        XCTAssertEqual(s.task, "create_task")
        XCTAssertEqual(s.args, [5])
        XCTAssertTrue(s.kwargs.isEmpty)
        XCTAssertNil(s.queue)
        XCTAssertEqual(s.priority, 0)
        XCTAssertEqual(s.message(routes: TaskRoutes()).queue, "celery")
        XCTAssertEqual(try tasks(body: " \r\n\t ", length: 9).args, [9], "a blank body is no body")
        XCTAssertEqual(try tasks("/tasks?task_length=3").args, [3])
        XCTAssertEqual(try tasks(body: #"{"kwargs": {"task_length": 2}}"#).args, [], "task_length as a kwarg")
        XCTAssertEqual(try tasks(body: #"{"args": [4]}"#).args, [4])
    }

    func testRoutesPickTheQueueWhenTheClientNamesNone() throws {
        let routes = TaskRoutes(rules: [("add", "math"), ("img.*", "images")])
        XCTAssertEqual(try tasks(body: #"{"task": "add"}"#).message(routes: routes).queue, "math")
        XCTAssertEqual(try tasks(body: #"{"task": "img.resize"}"#).message(routes: routes).queue, "images")
        XCTAssertEqual(try tasks(body: #"{"task": "add", "queue": "q"}"#).message(routes: routes).queue, "q")
        XCTAssertEqual(try tasks(body: #"{"task": "other"}"#).message(routes: routes).queue, "celery")
    }

    func testMalformedJSONIs400() {
        for body in ["{", #"{"task": }"#, "nope", #"{"a": 1} trailing"#, "\u{FF}"] {
            XCTAssertEqual(rejection(body: body)?.status, 400, body)
        }
        XCTAssertEqual(
            (try? TaskSubmission(processRequest: HTTPRequest(method: "POST", target: "/process", body: Array("{".utf8))))
                .map { _ in 0 } ?? 400, 400)
    }

    func testJSONOfTheWrongShapeIs422() {
        let cases: [(String, String)] = [
            ("[1, 2]", "body must be a JSON object"),
            (#""text""#, "body must be a JSON object"),
            (#"{"task": ""}"#, "'task' must be a non-empty string"),
            (#"{"task": 5}"#, "'task' must be a non-empty string"),
            (#"{"args": {"a": 1}}"#, "'args' must be an array"),
            (#"{"kwargs": [1]}"#, "'kwargs' must be an object"),
            (#"{"queue": ""}"#, "'queue' must be a non-empty queue name"),
            (#"{"priority": 256}"#, "'priority' must be an integer from 0 to 255"),
            (#"{"priority": "high"}"#, "'priority' must be an integer from 0 to 255"),
        ]
        for (body, detail) in cases {
            XCTAssertEqual(rejection(body: body), TaskSubmission.Invalid(status: 422, detail: detail), body)
        }
        for target in ["/tasks?task_length=x", "/tasks?task_length=-1", "/tasks?task_length=100001"] {
            XCTAssertEqual(rejection(target, body: "")?.status, 422, target)
        }
    }

    func testProcessRequests() throws {
        func process(_ target: String, _ body: String = "") throws(TaskSubmission.Invalid) -> TaskSubmission {
            try TaskSubmission(processRequest: HTTPRequest(method: "POST", target: target, body: Array(body.utf8)))
        }
        let q = try process("/process?blob_path=docs%2Fa&threshold=0.8")
        XCTAssertEqual(q.task, "fetch_documents_task")
        XCTAssertEqual(q.args, ["docs/a"])
        XCTAssertEqual(q.kwargs.map(\.key), ["process", "threshold"])
        XCTAssertEqual(q.kwargs.map(\.value), [true, 0.8])
        XCTAssertEqual(try process("/process", #"{"blob_path": "b"}"#).kwargs.map(\.value), [true, 0.5])
        for (target, body) in [
            ("/process", ""), ("/process?blob_path=a&threshold=2", ""), ("/process?blob_path=a&threshold=x", ""),
            ("/process", #"{"blob_path": 3}"#), ("/process", "[1]"),
        ] {
            XCTAssertThrowsError(try process(target, body), "\(target) \(body)") { error in
                XCTAssertEqual((error as? TaskSubmission.Invalid)?.status, 422)
            }
        }
    }

    // MARK: - Celery's send options

    func testSendOptionsAreWrittenAsCeleryWritesThem() throws {
        let s = try tasks(
            body: #"""
                {"task": "add", "args": [2, 3], "countdown": 10, "expires": 60, "ignore_result": true,
                 "task_id": "my-id-1", "priority": 6, "queue": "math",
                 "link": {"task": "noop", "args": [], "kwargs": {}, "options": {"task_id": "cb-1"}},
                 "link_error": [{"task": "noop", "options": {"task_id": "eb-1"}}, {"task": "noop"}]}
                """#)
        XCTAssertEqual(s.countdown, 10)
        XCTAssertEqual(s.expires, .after(60))
        XCTAssertTrue(s.ignoreResult)
        XCTAssertEqual(s.taskId, "my-id-1")
        XCTAssertEqual(s.link.map(\.task), ["noop"])
        XCTAssertEqual(s.linkError.map(\.id), ["eb-1", nil])
        XCTAssertEqual(s.taskNames, ["add", "noop", "noop", "noop"])
        let now = 1_800_000_000.25
        let m = s.message(routes: TaskRoutes(), now: now)
        XCTAssertEqual(m.id, "my-id-1")
        XCTAssertEqual(m.queue, "math")
        XCTAssertEqual(m.priority, 6)
        XCTAssertEqual(m.eta, CeleryTime.isoformat(now + 10))
        XCTAssertEqual(m.expires, CeleryTime.isoformat(now + 60))
        XCTAssertTrue(m.ignoreResult)
        XCTAssertEqual(m.embed["callbacks"]?[0]?["task"], "noop")
        XCTAssertEqual(m.embed["callbacks"]?[0]?["options"]?["task_id"], "cb-1")
        XCTAssertEqual(m.embed["errbacks"]?.arrayValue?.count, 2)
        XCTAssertEqual(s.expiration(now: now), "60000")
        // What a worker decodes from the envelope is what was asked for.
        let back = try TaskMessage.decode(m.envelopeBytes(expiration: s.expiration(now: now)), queue: m.queue)
        XCTAssertEqual(back.id, "my-id-1")
        XCTAssertEqual(back.eta, m.eta)
        XCTAssertEqual(back.expires, m.expires)
        XCTAssertTrue(back.ignoreResult)
        XCTAssertEqual(back.embed["callbacks"]?[0]?["options"]?["task_id"], "cb-1")
    }

    func testEtaAndExpiresAsTimes() throws {
        let iso = try tasks(body: #"{"task": "add", "eta": "2030-01-02T03:04:05.5+01:00", "expires": "2030-01-03"}"#)
        XCTAssertEqual(iso.eta, 1_893_549_845.5)
        XCTAssertEqual(iso.expires, .at(Date(timeIntervalSince1970: 1_893_628_800)))
        let m = iso.message(routes: TaskRoutes(), now: 0)
        XCTAssertEqual(m.eta, "2030-01-02T02:04:05.500000+00:00")
        XCTAssertEqual(m.expires, "2030-01-03T00:00:00.000000+00:00")
        XCTAssertEqual(try tasks(body: #"{"task": "add", "eta": 1893549845}"#).eta, 1_893_549_845)
        XCTAssertEqual(try tasks(body: #"{"eta": "2030-01-02 03:04Z"}"#).eta, 1_893_553_440)
        XCTAssertEqual(try tasks(body: #"{"eta": "2030-01-02T03:04:05"}"#).eta, 1_893_553_445, "no zone: UTC")
        XCTAssertEqual(try tasks(body: #"{"eta": "0001-01-01T00:00:00Z"}"#).eta, -62_135_596_800)
        XCTAssertEqual(try tasks(body: #"{"eta": "9999-12-31T23:59:59Z"}"#).eta, 253_402_300_799)
        XCTAssertEqual(try tasks(body: #"{"expires": -5}"#).expires, .after(-5), "already expired is Celery's too")
        XCTAssertNil(try tasks(body: #"{"eta": null, "expires": null}"#).eta)
    }

    func testLinkedTasksPassThePolicyLikeTheTask() throws {
        var policy = TaskPolicy()
        policy.allowedTasks.append("noop")
        let routes = TaskRoutes(rules: [("noop", "routed")])
        func refusal(_ body: String, scopes: [String]? = nil) throws -> TaskPolicy.Refusal? {
            policy.refusal(for: try tasks(body: body), routes: routes, scopes: scopes)
        }
        XCTAssertNil(try refusal(#"{"task": "add", "args": [1, 2], "link": {"task": "noop"}}"#))
        let refused = try refusal(#"{"task": "add", "args": [1, 2], "link": {"task": "os.system"}}"#)
        XCTAssertEqual(refused?.status, 403)
        XCTAssertEqual(refused?.code, "task_not_allowed")
        XCTAssertEqual(refused?.detail, "linked task 'os.system' is not allowed by this frontend")
        XCTAssertEqual(
            try refusal(#"{"task": "add", "args": [1, 2], "link_error": [{"task": "noop"}, {"task": "rm"}]}"#)?.detail,
            "linked task 'rm' is not allowed by this frontend")
        XCTAssertEqual(
            try refusal(#"{"task": "add", "args": [1, 2], "link": {"task": "noop"}}"#, scopes: ["tasks:add"])?.code,
            "forbidden", "a token for add alone may not link noop")
        XCTAssertNil(
            try refusal(
                #"{"task": "add", "args": [1, 2], "link": {"task": "noop"}}"#, scopes: ["tasks:add", "tasks:noop"]))
        XCTAssertNil(
            try refusal(#"{"task": "add", "args": [1, 2], "link": {"task": "noop", "options": {"queue": "routed"}}}"#))
        XCTAssertEqual(
            try refusal(#"{"task": "add", "args": [1, 2], "link": {"task": "noop", "options": {"queue": "secret"}}}"#)?
                .code,
            "queue_not_allowed")
        XCTAssertEqual(
            try refusal(
                #"{"task": "add", "args": [1, 2], "link": {"task": "noop", "options": {"routing_key": "secret"}}}"#)?
                .code, "queue_not_allowed", "a routing key names a queue too")
        XCTAssertNil(
            try refusal(
                #"{"task": "add", "args": [1, 2], "link": {"task": "noop", "options": {"routing_key": "routed"}}}"#))
        XCTAssertEqual(
            try refusal(#"{"task": "add", "args": [1, 2], "link": {"task": "noop", "options": {"queue": "a b"}}}"#)?
                .status, 422)
    }

    /// A link runs with its parent's result prepended (an errback with the failed id), so
    /// the argument bounds apply to what it will run with: a bounded task is linked only
    /// immutable, with bounded args, and never as an errback.
    func testLinksCannotRunBoundedTasksPastTheirBounds() throws {
        let policy = TaskPolicy()
        func refusal(_ body: String, scopes: [String]? = nil) throws -> TaskPolicy.Refusal? {
            policy.refusal(for: try tasks(body: body), routes: TaskRoutes(), scopes: scopes)
        }
        let mutable = try refusal(#"{"task": "add", "args": [1000000000, 0], "link": {"task": "create_task"}}"#)
        XCTAssertEqual(mutable?.status, 422)
        XCTAssertEqual(
            mutable?.detail,
            #"a linked 'create_task' must be immutable ("immutable": true); else it runs with the parent's result as its first argument"#
        )
        XCTAssertEqual(
            try refusal(
                #"{"task": "add", "args": [1, 2], "link": {"task": "create_task", "args": [5000], "immutable": true}}"#)?
                .detail, "linked task: create_task takes one task_length, an integer from 0 to 1000")
        XCTAssertEqual(
            try refusal(
                #"{"task": "add", "args": [1, 2], "link": {"task": "add", "args": ["x", 1], "immutable": true}}"#)?
                .detail, "linked task: add takes two numbers, x and y")
        XCTAssertNil(
            try refusal(
                #"{"task": "add", "args": [1, 2], "link": {"task": "create_task", "args": [3], "immutable": true}}"#))
        XCTAssertNil(
            try refusal(
                #"{"task": "add", "args": [1, 2], "link": {"task": "add", "kwargs": {"x": 1, "y": 2}, "immutable": true}}"#
            ))
        let errback = try refusal(
            #"{"task": "add", "args": [1, 2], "link_error": {"task": "create_task", "args": [3], "immutable": true}}"#)
        XCTAssertEqual(errback?.status, 422)
        XCTAssertEqual(
            errback?.detail, "'create_task' may not be a link_error task (it would run with the failed task's id)")
        // A caller-chosen id (the task's or a link's) needs the whole `tasks` scope.
        XCTAssertEqual(
            try refusal(#"{"task": "add", "args": [1, 2], "task_id": "t"}"#, scopes: ["tasks:add"])?.status, 403)
        XCTAssertEqual(
            try refusal(
                #"{"task": "add", "args": [1, 2], "link": {"task": "add", "args": [1, 2], "immutable": true, "options": {"task_id": "t"}}}"#,
                scopes: ["tasks:add"])?.code, "forbidden")
        XCTAssertNil(try refusal(#"{"task": "add", "args": [1, 2], "task_id": "t"}"#, scopes: ["tasks"]))
        XCTAssertNil(try refusal(#"{"task": "add", "args": [1, 2], "task_id": "t"}"#, scopes: ["*"]))
        XCTAssertNil(try refusal(#"{"task": "add", "args": [1, 2], "task_id": "t"}"#))
    }

    /// Link options are an allow-list: `headers` (which Python Celery lets overwrite the
    /// `task` header), `exchange`, `reply_to`, … are refused; the accepted ones are range-checked.
    func testLinkOptionsAreAnAllowList() throws {
        let accepted = try tasks(
            body: #"""
                {"task": "add", "args": [1, 2], "link": {"task": "noop", "options": {"queue": "celery",
                 "routing_key": "celery", "priority": 3, "countdown": 2, "expires": "2030-01-01T00:00:00Z",
                 "task_id": "l-1", "ignore_result": true, "immutable": false}}}
                """#)
        XCTAssertEqual(accepted.link.first?.options["priority"], 3)
        let list = "accepted: countdown, eta, expires, ignore_result, immutable, priority, queue, routing_key, task_id"
        let cases: [(String, String)] = [
            (#"{"headers": {"task": "os.system"}}"#, "link: options.headers is not accepted (\(list))"),
            (#"{"reply_to": "x"}"#, "link: options.reply_to is not accepted (\(list))"),
            (#"{"exchange": ""}"#, "link: options.exchange is not accepted (\(list))"),
            (#"{"priority": 999}"#, "link options: 'priority' must be an integer from 0 to 255"),
            (#"{"countdown": -1}"#, "link options: 'countdown' must be a number of seconds from 0 to 3155760000"),
            (
                #"{"eta": "tomorrow"}"#,
                "link options: 'eta' must be an ISO 8601 time (2026-01-02T03:04:05Z) from year 1 to 9999"
            ),
            (
                #"{"expires": 1e20}"#,
                "link options: 'expires' must be seconds from now (at most 3155760000) or an ISO 8601 time"
            ),
            (#"{"ignore_result": "yes"}"#, "link options: 'ignore_result' must be true or false"),
            (#"{"immutable": 1}"#, "link: options.immutable must be true or false"),
            (#"{"countdown": 1, "eta": 1893553445}"#, "link: give options 'countdown' or 'eta', not both"),
        ]
        for (options, detail) in cases {
            let body = #"{"task": "add", "args": [1, 2], "link": {"task": "noop", "options": \#(options)}}"#
            XCTAssertEqual(rejection(body: body), TaskSubmission.Invalid(status: 422, detail: detail), options)
        }
    }

    func testQueryOptions() throws {
        let q = try tasks("/tasks?countdown=2.5&expires=30&ignore_result=1&task_id=q-id&priority=3&queue=math")
        XCTAssertEqual(q.countdown, 2.5)
        XCTAssertEqual(q.expires, .after(30))
        XCTAssertTrue(q.ignoreResult)
        XCTAssertEqual(q.taskId, "q-id")
        XCTAssertEqual(q.priority, 3)
        XCTAssertEqual(q.queue, "math")
        XCTAssertEqual(try tasks("/tasks?eta=2030-01-02T03%3A04%3A05Z").eta, 1_893_553_445)
        XCTAssertEqual(try tasks("/tasks?eta=1893553445").eta, 1_893_553_445)
        XCTAssertEqual(
            try tasks("/tasks?expires=2030-01-02T03%3A04%3A05Z").expires,
            .at(Date(timeIntervalSince1970: 1_893_553_445)))
        let both = try tasks(
            "/tasks?countdown=5&task_id=q&ignore_result=true",
            body: #"{"countdown": 1, "task_id": "b", "ignore_result": false}"#)
        XCTAssertEqual(both.countdown, 1, "the body wins")
        XCTAssertEqual(both.taskId, "b")
        XCTAssertFalse(both.ignoreResult)
        XCTAssertTrue(try tasks("/tasks?link=%7B%7D").link.isEmpty, "links are read from the body only")
    }

    func testMalformedOptionsAre422WithAClearDetail() {
        let countdown = "'countdown' must be a number of seconds from 0 to 3155760000"
        let eta = "'eta' must be an ISO 8601 time (2026-01-02T03:04:05Z) from year 1 to 9999"
        let etaNumber = "'eta' must be an ISO 8601 time or epoch seconds from year 1 to 9999"
        let expiresText = "'expires' must be seconds from now or an ISO 8601 time from year 1 to 9999"
        let taskId = "'task_id' must be 1 to 255 bytes with no '/' and no control characters"
        let cases: [(String, String)] = [
            (#"{"countdown": -1}"#, countdown),
            (#"{"countdown": "5"}"#, countdown),
            (#"{"countdown": 1e300}"#, countdown),
            (#"{"countdown": 3155760001}"#, countdown),
            (#"{"countdown": true}"#, countdown),
            (#"{"eta": "tomorrow"}"#, eta),
            (#"{"eta": "NaN"}"#, eta),
            (#"{"eta": "10000-01-01T00:00:00Z"}"#, eta),
            (#"{"eta": "2030-02-30T00:00:00Z"}"#, eta),
            (#"{"eta": "2030-13-01"}"#, eta),
            (#"{"eta": "2030-01-01T24:00:00Z"}"#, eta),
            (#"{"eta": "2030-01-01T00:00:00+0100"}"#, eta),
            (#"{"eta": "2030-01-01T00:00:00Z junk"}"#, eta),
            (#"{"eta": "9999-12-31T23:59:59-01:00"}"#, eta),
            (#"{"eta": 253402300800}"#, etaNumber),
            (#"{"eta": -1e20}"#, etaNumber),
            (#"{"eta": [1]}"#, etaNumber),
            (#"{"expires": "later"}"#, expiresText),
            (#"{"expires": {"s": 1}}"#, "'expires' must be seconds from now (at most 3155760000) or an ISO 8601 time"),
            (#"{"expires": 1e20}"#, "'expires' must be seconds from now (at most 3155760000) or an ISO 8601 time"),
            (#"{"ignore_result": "yes"}"#, "'ignore_result' must be true or false"),
            (#"{"ignore_result": 1}"#, "'ignore_result' must be true or false"),
            (#"{"task_id": ""}"#, taskId),
            (#"{"task_id": "a/b"}"#, taskId),
            (#"{"task_id": "a\nb"}"#, taskId),
            (#"{"task_id": "a\u0085b"}"#, taskId),
            (#"{"task_id": 5}"#, taskId),
            (#"{"task_id": "\#(String(repeating: "x", count: 256))"}"#, taskId),
            (#"{"countdown": 5, "eta": "2030-01-01"}"#, "give 'countdown' or 'eta', not both"),
            (
                #"{"link": 5}"#,
                "'link' must be a signature {\"task\", \"args\", \"kwargs\", \"options\"}: malformed signature at link: not an object but int"
            ),
            (
                #"{"link": {"args": []}}"#,
                "'link' must be a signature {\"task\", \"args\", \"kwargs\", \"options\"}: malformed signature at link: task must be a non-empty string, got nothing"
            ),
            (
                #"{"link_error": [{"task": "noop", "args": 1}]}"#,
                "'link_error' must be a signature {\"task\", \"args\", \"kwargs\", \"options\"}: malformed signature at link_error[0]: args must be a list, got int"
            ),
            (
                #"{"link": {"task": "noop", "options": {"link": {"task": "x"}}}}"#,
                "link: options.link is not accepted (link tasks directly)"
            ),
            (
                #"{"link": {"task": "noop", "options": {"exchange": "x"}}}"#,
                "link: options.exchange is not accepted (name a queue)"
            ),
            (
                #"{"link": {"task": "noop", "options": {"routing_key": 5}}}"#,
                "link: options.routing_key must be a non-empty string"
            ),
            (
                #"{"link": {"task": "noop", "options": {"chain": []}}}"#,
                "link: options.chain is not accepted (link tasks directly)"
            ),
            (
                #"{"link": {"task": "g", "subtask_type": "group"}}"#,
                "link: only task signatures may be linked, not a group"
            ),
            (
                #"{"link": {"task": "noop", "options": {"task_id": "a/b"}}}"#,
                "link: options.task_id must be 1 to 255 bytes with no '/' and no control characters"
            ),
            (
                #"{"link": [\#(Array(repeating: #"{"task": "noop"}"#, count: 17).joined(separator: ","))]}"#,
                "'link' may hold at most 16 signatures"
            ),
        ]
        for (body, detail) in cases {
            XCTAssertEqual(rejection(body: body), TaskSubmission.Invalid(status: 422, detail: detail), body)
        }
        for target in [
            "/tasks?countdown=nan", "/tasks?countdown=inf", "/tasks?countdown=0x10", "/tasks?countdown=",
            "/tasks?countdown=1e999",
            "/tasks?countdown=-3", "/tasks?eta=NaN", "/tasks?eta=1e400", "/tasks?expires=Infinity",
            "/tasks?ignore_result=maybe",
            "/tasks?task_id=", "/tasks?task_id=a%2Fb", "/tasks?task_id=a%00b", "/tasks?priority=1.5",
            "/tasks?priority=999",
            "/tasks?queue=", "/tasks?eta=99999-01-01",
        ] {
            XCTAssertEqual(rejection(target, body: "")?.status, 422, target)
        }
    }

    /// Random option values never trap, and whatever is accepted makes a message a worker decodes.
    func testRandomOptionValuesNeverTrap() throws {
        var rng = SystemRandomNumberGenerator()
        let values = [
            "0", "-0", "1e308", "-1e308", "1e-400", "9223372036854775807", "18446744073709551616", "\"\"",
            "\"9999-12-31\"",
            "\"0000-01-01\"", "\"2026-02-29\"", "\"2024-02-29T23:59:59.999999999Z\"",
            "\"2024-02-29T23:59:59.9999999999Z\"",
            "null", "true", "[]", "{}", "\"\\u0000\"", "\"NaN\"", "-1", "3155760000", "253402300799.9999",
        ]
        for _ in 0..<2000 {
            let key = ["countdown", "eta", "expires", "ignore_result", "task_id", "priority", "link", "link_error"]
                .randomElement(using: &rng)!
            let body = #"{"task": "add", "\#(key)": \#(values.randomElement(using: &rng)!)}"#
            guard let s = try? tasks(body: body) else { continue }
            let m = s.message(routes: TaskRoutes(), now: CeleryTime.now())
            XCTAssertNoThrow(
                try TaskMessage.decode(m.envelopeBytes(expiration: s.expiration(now: 0)), queue: m.queue), body)
        }
    }

    func testIsoTimes() {
        XCTAssertEqual(TaskSubmission.isoTime("1970-01-01T00:01:00Z"), 60)
        XCTAssertEqual(TaskSubmission.isoTime("1970-01-01T00:00:00-00:30"), 1800)
        XCTAssertEqual(TaskSubmission.isoTime("2000-02-29"), 951_782_400)
        XCTAssertNil(TaskSubmission.isoTime("1999-02-29"))
        XCTAssertNil(TaskSubmission.isoTime("0000-12-31"))
        XCTAssertNil(TaskSubmission.isoTime("2000-01-01T"))
        XCTAssertNil(TaskSubmission.isoTime("2000-01-01T00:00:00."))
        XCTAssertNil(TaskSubmission.isoTime("2000-01-01x00:00"))
        XCTAssertNil(TaskSubmission.isoTime("+2000-01-01"))
    }
}
