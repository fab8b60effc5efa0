import FastCore
import Foundation
import XCTest

/// The HTTP API against a real celeris-frontend and real workers (a celeris-worker
/// process and a Python Celery 5.7 worker): Celery's send options, revoke, children.
final class HTTPAPITests: FrontendTestCase {
    override var frontendFlags: [String] { ["--allow-task", "noop", "--allow-task", "tsum"] }

    enum Kind: CaseIterable { case celeris, python }

    private func startWorker(_ kind: Kind, step: String = "0") throws -> Spawned {
        switch kind {
        case .celeris: return try CelerisProcess.worker(redis: redis, step: step)
        case .python:
            return try PythonWorker.spawn(redis: redis, env: ["FIXTURE_STEP_SECONDS": step])
        }
    }

    /// POST /tasks with `body`; the task id answered.
    private func send(_ body: String, query: String = "") throws -> String {
        let r = try HTTPClient.request("POST", port: port, path: "/tasks" + query, body: body)
        guard r.status == 200, let id = r.json?["task_id"]?.stringValue else {
            throw TestFailure("POST /tasks \(body) answered \(r.status) \(r.text)")
        }
        return id
    }

    private func status(_ id: String, query: String = "") throws -> JSON {
        let r = try HTTPClient.request("GET", port: port, path: "/status/\(id)\(query)")
        guard r.status == 200, let json = r.json else {
            throw TestFailure("GET /status/\(id) answered \(r.status) \(r.text)")
        }
        return json
    }

    /// The task's state once it is one of `states` (polled with a deadline), else the last seen.
    @discardableResult
    private func awaitState(_ id: String, _ states: Set<String>, timeout: Double = 20) throws -> JSON {
        var last: JSON = nil
        _ = try eventually(timeout: timeout, interval: 0.05) {
            last = try status(id)
            return states.contains(last["state"]?.stringValue ?? "")
        }
        return last
    }

    /// `date_done` of the task's stored record, in epoch seconds.
    private func doneAt(_ id: String) throws -> Double {
        let text = try XCTUnwrap(try result(id)?["date_done"]?.stringValue, "no date_done for \(id)")
        return try XCTUnwrap(CeleryTime.parse(text), text)
    }

    // MARK: - countdown, eta, expires

    func testCountdownAndEtaAreRespected() throws {
        for kind in Kind.allCases {
            let worker = try startWorker(kind)
            defer { worker.stop() }
            let sentAt = CeleryTime.now()
            let byCountdown = try send(#"{"task": "add", "args": [1, 2], "countdown": 1.5}"#)
            let byEta = try send(#"{"task": "add", "args": [2, 2], "eta": \#(sentAt + 2)}"#)
            let byQuery = try send("", query: "?countdown=1&task_length=1")
            XCTAssertEqual(try awaitState(byCountdown, ["SUCCESS"])["result"], 3, "\(kind)")
            XCTAssertEqual(try awaitState(byEta, ["SUCCESS"])["result"], 4, "\(kind)")
            XCTAssertEqual(try awaitState(byQuery, ["SUCCESS"])["state"], "SUCCESS", "\(kind)")
            // Each finished no earlier than asked (date_done is stamped when it ends).
            XCTAssertGreaterThanOrEqual(try doneAt(byCountdown), sentAt + 1.5, "\(kind) countdown")
            XCTAssertGreaterThanOrEqual(try doneAt(byEta), sentAt + 2, "\(kind) eta")
            XCTAssertGreaterThanOrEqual(try doneAt(byQuery), sentAt + 1, "\(kind) countdown from the query")
        }
    }

    func testExpiresInThePastIsRevoked() throws {
        for kind in Kind.allCases {
            let worker = try startWorker(kind)
            defer { worker.stop() }
            let relative = try send(#"{"task": "add", "args": [1, 2], "expires": -1}"#)
            let absolute = try send(#"{"task": "add", "args": [1, 2], "expires": "2001-01-01T00:00:00Z"}"#)
            let fresh = try send(#"{"task": "add", "args": [1, 2], "expires": 60}"#)
            XCTAssertEqual(try awaitState(relative, ["REVOKED", "SUCCESS"])["state"], "REVOKED", "\(kind)")
            XCTAssertEqual(try awaitState(absolute, ["REVOKED", "SUCCESS"])["state"], "REVOKED", "\(kind)")
            XCTAssertEqual(try awaitState(fresh, ["REVOKED", "SUCCESS"])["state"], "SUCCESS", "\(kind)")
        }
    }

    // MARK: - task id, link, link_error, ignore_result

    func testCallerTaskIdAndLinkAndIgnoreResult() throws {
        for kind in Kind.allCases {
            let worker = try startWorker(kind)
            defer { worker.stop() }
            let tag = "\(kind)-\(UUID().uuidString)"
            let id = try send(
                #"{"task": "add", "args": [2, 3], "task_id": "parent-\#(tag)", "link": {"task": "noop", "options": {"task_id": "cb-\#(tag)"}}}"#
            )
            XCTAssertEqual(id, "parent-\(tag)", "the caller's id is the task's")
            XCTAssertEqual(try awaitState(id, ["SUCCESS"])["result"], 5, "\(kind)")
            XCTAssertEqual(
                try awaitState("cb-\(tag)", ["SUCCESS"])["result"], 5, "\(kind): the callback got the result")

            // ignore_result: the callback runs (so the task did), but no record of the task is stored.
            let ignored = try send(
                #"{"task": "add", "args": [4, 4], "ignore_result": true, "link": {"task": "noop", "options": {"task_id": "cb2-\#(tag)"}}}"#
            )
            XCTAssertEqual(try awaitState("cb2-\(tag)", ["SUCCESS"])["result"], 8, "\(kind)")
            XCTAssertNil(try result(ignored), "\(kind): ignore_result stored a record")
            XCTAssertEqual(try status(ignored)["state"], "PENDING")
        }
    }

    /// Celery calls an errback with the failed task's id (`noop` returns it). The Celeris
    /// worker does not run errbacks (no `embed.errbacks` support), so this is Python only.
    func testLinkErrorRunsOnFailure() throws {
        let worker = try startWorker(.python)
        defer { worker.stop() }
        let eb = "eb-\(UUID().uuidString)"
        let id = try send(
            #"{"task": "tsum", "args": [5], "link_error": [{"task": "noop", "options": {"task_id": "\#(eb)"}}]}"#)
        XCTAssertEqual(try awaitState(id, ["FAILURE", "SUCCESS"])["state"], "FAILURE")
        XCTAssertEqual(
            try awaitState(eb, ["SUCCESS", "FAILURE"])["result"], .string(id), "the errback got the failed id")
    }

    // MARK: - revoke

    func testRevokeOfACountdownTaskOnBothWorkers() throws {
        for kind in Kind.allCases {
            let worker = try startWorker(kind)
            defer { worker.stop() }
            let id = try send(#"{"task": "add", "args": [1, 1], "countdown": 2}"#)
            let revoked = try HTTPClient.request("DELETE", port: port, path: "/tasks/\(id)")
            XCTAssertEqual(revoked.status, 202, revoked.text)
            XCTAssertEqual(
                revoked.json, ["task_id": .string(id), "revoked": true, "terminate": false, "signal": "SIGTERM"])
            let other = try send(#"{"task": "add", "args": [1, 1], "countdown": 2}"#)
            let byPost = try HTTPClient.request("POST", port: port, path: "/tasks/\(other)/revoke")
            XCTAssertEqual(byPost.status, 202, byPost.text)
            XCTAssertEqual(try awaitState(id, ["REVOKED", "SUCCESS"])["state"], "REVOKED", "\(kind)")
            XCTAssertEqual(try awaitState(other, ["REVOKED", "SUCCESS"])["state"], "REVOKED", "\(kind)")
        }
    }

    func testTerminateStopsARunningTaskOnACelerisWorker() throws {
        let worker = try startWorker(.celeris, step: "0.2")
        defer { worker.stop() }
        let id = try send(#"{"task": "create_task", "args": [200]}"#)
        try awaitState(id, ["PROGRESS"])
        let r = try HTTPClient.request(
            "POST", port: port, path: "/tasks/\(id)/revoke", body: #"{"terminate": true, "signal": "KILL"}"#)
        XCTAssertEqual(r.status, 202, r.text)
        XCTAssertEqual(r.json, ["task_id": .string(id), "revoked": true, "terminate": true, "signal": "SIGKILL"])
        XCTAssertEqual(try awaitState(id, ["REVOKED", "SUCCESS", "FAILURE"], timeout: 10)["state"], "REVOKED")
    }

    func testRevokeRefusesMalformedRequests() throws {
        for (method, path, body, status) in [
            ("POST", "/tasks/x/revoke?terminate=maybe", nil, 422), ("POST", "/tasks/x/revoke?signal=SIGFOO", nil, 422),
            ("POST", "/tasks/x/revoke", #"{"terminate": "yes"}"#, 422), ("POST", "/tasks/x/revoke", "[1]", 422),
            ("POST", "/tasks/x/revoke", "{", 400), ("GET", "/tasks/x", nil, 405), ("PUT", "/tasks/x/revoke", nil, 405),
            ("DELETE", "/tasks/a%0Ab", nil, 404), ("DELETE", "/tasks/a/b", nil, 404),
        ] as [(String, String, String?, Int)] {
            let r = try HTTPClient.request(method, port: port, path: path, body: body)
            XCTAssertEqual(r.status, status, "\(method) \(path) \(body ?? "") -> \(r.text)")
        }
    }

    // MARK: - children

    /// A Python worker records the callback it sent as a child; GET /status shows its state.
    func testStatusShowsChildren() throws {
        let worker = try startWorker(.python)
        defer { worker.stop() }
        let cb = "child-\(UUID().uuidString)"
        let id = try send(
            #"{"task": "add", "args": [20, 22], "link": {"task": "noop", "options": {"task_id": "\#(cb)"}}}"#)
        try awaitState(cb, ["SUCCESS"])
        let view = try awaitState(id, ["SUCCESS"])
        XCTAssertEqual(view["result"], 42)
        XCTAssertEqual(
            view["children"], [["task_id": .string(cb), "status": "Completed", "state": "SUCCESS", "result": 42]])
    }

    // MARK: - ?wait= long-poll

    /// GET /status/{id}?wait= on a raw socket: the answer and the time it came.
    private func waitStatus(_ id: String, wait: Double) throws -> (json: JSON, answeredAt: Double) {
        let r = try RawSocket(port: port, timeout: wait + 10)
        try r.send("GET /status/\(id)?wait=\(wait) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        let response = try r.readResponse()
        let at = CeleryTime.now()
        guard response.status == 200, let json = response.json else {
            throw TestFailure("wait answered \(response.status) \(response.text)")
        }
        return (json, at)
    }

    /// The frontend's watched-tasks gauge (every loop), sampled once a second.
    private func watchedTasks() throws -> Double {
        try Prometheus.scrape(port: port).filter { $0.key.hasPrefix("celeris_frontend_watched_tasks") }.values
            .reduce(0, +)
    }

    /// The answer comes when the task finishes (not at the wait's end, not from a record already
    /// there): every long-poll is watched (the gauge counts them all) before any of the tasks can
    /// run (a 3 s countdown), each task's `date_done` comes after that moment, and its answer
    /// follows it. The delay from `date_done` to the answer, over 50 tasks, is printed as a figure.
    func testWaitAnswersWhenTheTaskFinishes() throws {
        for kind in Kind.allCases {
            let worker = try startWorker(kind)
            defer { worker.stop() }
            let n = kind == .celeris ? 50 : 10
            let ids = try (0..<n).map { i in try send(#"{"task": "add", "args": [\#(i), 1], "countdown": 3}"#) }
            let asked = CeleryTime.now()
            // Each socket is read by one thread only.
            nonisolated(unsafe) let sockets = try ids.map { id in
                let socket = try RawSocket(port: port, timeout: 30)
                try socket.send("GET /status/\(id)?wait=20 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                return socket
            }
            XCTAssertTrue(try eventually(timeout: 10) { try watchedTasks() == Double(n) }, "\(kind): all watched")
            let allWatched = CeleryTime.now()
            let answers = LockedBox<[Int: (response: HTTPResponse?, at: Double)]>([:])
            DispatchQueue.concurrentPerform(iterations: n) { i in
                let response = try? sockets[i].readResponse()
                let at = CeleryTime.now()
                answers.modify { $0[i] = (response, at) }
            }
            var delays: [Double] = []
            for (i, id) in ids.enumerated() {
                let answer = try XCTUnwrap(answers.get()[i], "\(kind) \(i)")
                let json = answer.response?.json
                XCTAssertEqual(answer.response?.status, 200, "\(kind) \(i)")
                XCTAssertEqual(json?["state"], "SUCCESS", "\(kind) \(i)")
                XCTAssertEqual(json?["result"], .int(Int64(i + 1)))
                XCTAssertLessThan(answer.at - asked, 15, "\(kind): answered at completion, not at the wait's end")
                let done = try doneAt(id)
                XCTAssertGreaterThan(done, allWatched, "\(kind) \(i): the task ended while its long-poll waited")
                delays.append(answer.at - done)
            }
            delays.sort()
            let ms = { (q: Double) in
                String(format: "%.1f", delays[min(delays.count - 1, Int(q * Double(delays.count)))] * 1000)
            }
            print(
                "FIGURE wait delay \(kind) (date_done -> answer, \(delays.count) tasks): p50 \(ms(0.5)) ms, p90 \(ms(0.9)) ms, max \(ms(1)) ms"
            )
        }
    }

    func testWaitTimesOutWithTheCurrentState() throws {
        let worker = try startWorker(.celeris, step: "0.3")
        defer { worker.stop() }
        let later = try send(#"{"task": "add", "args": [1, 1], "countdown": 60}"#)
        var asked = CeleryTime.now()
        let pending = try waitStatus(later, wait: 1.5)
        XCTAssertEqual(pending.json, ["status": "Pending...", "state": "PENDING"])
        // The loop's timer runs on its cached monotonic time: allow a few ms early.
        XCTAssertGreaterThanOrEqual(pending.answeredAt - asked, 1.45)
        XCTAssertLessThan(pending.answeredAt - asked, 5)
        print("FIGURE wait=1.5 timed out after \(String(format: "%.3f", pending.answeredAt - asked)) s")

        let running = try send(#"{"task": "create_task", "args": [40]}"#)
        try awaitState(running, ["PROGRESS"])
        asked = CeleryTime.now()
        let progress = try waitStatus(running, wait: 1)
        XCTAssertEqual(progress.json["state"], "PROGRESS")
        XCTAssertNotNil(progress.json["meta"]?["progress"]?.intValue)
        XCTAssertGreaterThanOrEqual(progress.answeredAt - asked, 0.95)
        // Not left running into teardown: terminated (and that is seen) here.
        let stop = try HTTPClient.request(
            "POST", port: port, path: "/tasks/\(running)/revoke", body: #"{"terminate": true, "signal": "KILL"}"#)
        XCTAssertEqual(stop.status, 202, stop.text)
        XCTAssertEqual(try awaitState(running, ["REVOKED", "SUCCESS", "FAILURE"], timeout: 10)["state"], "REVOKED")

        // A task already finished is answered at once.
        let done = try send(#"{"task": "add", "args": [2, 2]}"#)
        try awaitState(done, ["SUCCESS"])
        asked = CeleryTime.now()
        let final = try waitStatus(done, wait: 30)
        XCTAssertEqual(final.json["result"], 4)
        XCTAssertLessThan(final.answeredAt - asked, 5)
    }

    func testWaitRefusesBadValues() throws {
        for wait in ["0", "-1", "60.5", "nan", "inf", "abc", "", "1e3", "0x10"] {
            let r = try HTTPClient.request("GET", port: port, path: "/status/x?wait=\(wait)")
            XCTAssertEqual(r.status, 422, wait)
            XCTAssertEqual(r.json?["error"], "invalid_wait", wait)
        }
        XCTAssertEqual(try HTTPClient.request("GET", port: port, path: "/status/x?wait=0.01").status, 200)
    }

    /// A client that closes its long-poll stops the watch (the watched-tasks gauge drops back).
    func testClosedLongPollIsUnwatched() throws {
        let socket = try RawSocket(port: port)
        try socket.send("GET /status/never-\(UUID().uuidString)?wait=60 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        XCTAssertTrue(try eventually(timeout: 10) { try watchedTasks() == 1 }, "the long-poll is watched")
        shutdown(socket.fd, Int32(SHUT_RDWR))  // the client hangs up; the descriptor is closed once, by RawSocket
        XCTAssertTrue(try eventually(timeout: 10) { try watchedTasks() == 0 }, "closed: no longer watched")
    }

    /// A graceful shutdown answers a waiting request with the state it has.
    func testShutdownAnswersWaitingRequests() throws {
        let socket = try RawSocket(port: port, timeout: 20)
        try socket.send("GET /status/later-\(UUID().uuidString)?wait=60 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        XCTAssertTrue(
            try eventually(timeout: 10) { try watchedTasks() == 1 })
        let asked = CeleryTime.now()
        frontend.process.terminate()
        let r = try socket.readResponse()
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.json, ["status": "Pending...", "state": "PENDING"])
        XCTAssertLessThan(CeleryTime.now() - asked, 10)
    }
}
