import FastCore
import Foundation
import XCTest

/// Result records list their children as Celery 5.7 stores them, and a failed task's
/// `link_error` errbacks run: Python Celery workers' records are the reference, and a
/// Celeris worker must store the same shapes for the same workflows sent by a Python client.
final class ResultChildrenTests: RedisTestCase {
    /// What Celery 5.7 stores in `children` (every id written "ID"), as a Python worker
    /// stored it when this test was written (Tests/CelerisTests/Fixtures/children_probe.py):
    /// a plain task is `[[id, null], null]`, a group `[[group_id, null], [members]]`.
    static let task: JSON = [["ID", nil], nil]
    static let pair: JSON = [["ID", nil], [task, task]]
    static let expectedShapes: [String: JSON] = [
        "chain": [task],  // a | b: a's record lists b
        "link": [task],  // one link callback
        "links": [pair],  // several links are sent as one group
        "send_one": [task],  // a task sent from inside the task
        "chain_group": [pair],  // a chain's next step that is a group
        "fail": [],  // errbacks are sent after the FAILURE is stored
    ]

    /// Every string of `json` as "ID" (ids are random).
    func shape(_ json: JSON?) -> JSON? {
        switch json {
        case .string?: return "ID"
        case .array(let items)?: return .array(items.map { shape($0) ?? nil })
        default: return json
        }
    }

    /// The children's `(id, group id or nil)` of a record, one level (a group's members with its id).
    func children(_ record: JSON?) -> [(id: String, group: String?)] {
        var out: [(String, String?)] = []
        for child in record?["children"]?.arrayValue ?? [] {
            guard let head = child.arrayValue?.first?.arrayValue?.first?.stringValue else { continue }
            if let members = child.arrayValue?.last?.arrayValue {
                for m in members {
                    if let id = m.arrayValue?.first?.arrayValue?.first?.stringValue { out.append((id, head)) }
                }
            } else {
                out.append((head, nil))
            }
        }
        return out
    }

    /// Run the probe; check the shapes, and that every child listed ran as that child
    /// (its record exists, its `parent_id` is the sender, a group member's `group_id` is the group's).
    func checkChildren(_ out: JSON, file: StaticString = #filePath, line: UInt = #line) throws {
        for (name, expected) in Self.expectedShapes {
            let entry = try XCTUnwrap(out[name], name, file: file, line: line)
            let record = entry["record"]
            XCTAssertEqual(shape(record?["children"]), expected, "\(name): \(record ?? nil)", file: file, line: line)
            let sender = try XCTUnwrap(entry["id"]?.stringValue, file: file, line: line)
            for (id, group) in children(record) {
                let child = try XCTUnwrap(try result(id), "\(name): no record for child \(id)", file: file, line: line)
                XCTAssertEqual(child["status"], "SUCCESS", "\(name): \(child)", file: file, line: line)
                XCTAssertEqual(child["parent_id"]?.stringValue, sender, "\(name): \(child)", file: file, line: line)
                XCTAssertEqual(child["group_id"]?.stringValue, group, "\(name): \(child)", file: file, line: line)
            }
        }
        XCTAssertEqual(children(out["chain"]?["record"]).first?.id, out["chain"]?["next"]?.stringValue)
        XCTAssertEqual(
            children(out["send_one"]?["record"]).first?.id, out["send_one"]?["record"]?["result"]?.stringValue)
        XCTAssertEqual(out["fail"]?["record"]?["status"], "FAILURE")
    }

    func probe(errbackQueue: String? = nil) throws -> JSON {
        try resultLine(try runPython("children_probe.py", [redis.url] + (errbackQueue.map { [$0] } ?? [])))
    }

    /// A Python Celery 5.7 worker running Fixtures/children_app.py on `queues`.
    func pythonWorker(queues: String = "celery") throws -> Spawned {
        let p = try Spawned(
            try TestPaths.python(),
            [
                "-m", "celery", "-A", "children_app", "worker", "-P", "solo", "-c", "1", "--loglevel=info", "-n",
                "py@test", "-Q", queues, "--without-mingle", "--without-gossip",
            ],
            env: ["CELERY_BROKER_URL": redis.url], cwd: TestPaths.fixtures, name: "pyworker")
        let ready = eventually(timeout: 30) {
            let members = (try? self.client.command("SMEMBERS", "_kombu.binding.celery.pidbox").elements) ?? []
            return members.contains { $0.text?.hasSuffix("py@test.celery.pidbox") ?? false }
        }
        if !ready { throw TestFailure("python worker did not start:\n\(p.log)") }
        return p
    }

    /// The errbacks' calls a Python worker noted (children_app's `ch.note`).
    func pythonNotes() throws -> [JSON] {
        (try client.command("LRANGE", "children.notes", "0", "-1").elements ?? []).compactMap {
            $0.text.flatMap { try? JSONParser.parse($0) }
        }
    }

    /// One errback call: its arguments and where it came from.
    struct Note: Equatable, Sendable {
        var args: [JSON]
        var parentId: String?
        var rootId: String?
        var group: String?
    }

    /// children_app's tasks, in Swift, on an in-process Celeris worker; `ch.note` calls go to `notes`.
    func celerisWorker(notes: LockedBox<[Note]>) -> InProcessWorker {
        InProcessWorker(redis: redis) { registry in
            registry.register("ch.echo") { ctx in ctx.argument(0, "x") ?? nil }
            registry.register("ch.send_one") { ctx in
                .string(ctx.send("add", args: [ctx.argument(0, "x") ?? nil, 1]))
            }
            registry.register("ch.fail") { ctx in
                throw TaskFailure(type: "ValueError", message: "failing on purpose: \(ctx.argument(0, "x") ?? nil)")
            }
            registry.register("ch.note") { ctx in
                let m = ctx.message
                notes.modify { $0.append(Note(args: m.args, parentId: m.parentId, rootId: m.rootId, group: m.group)) }
                return .array(m.args)
            }
        }
    }

    /// Both errbacks ran once, each with the failed id first, as children of the failed
    /// task, in one group (Celery's `group(errbacks).apply_async((task_id,), parent_id=…, root_id=…)`).
    func checkErrbacks(_ notes: [Note], failed: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(notes.count, 2, "\(notes)", file: file, line: line)
        XCTAssertEqual(
            Set(notes.map { JSON.array($0.args).serialized() }),
            [JSON.array([.string(failed), "extra"]).serialized(), JSON.array([.string(failed)]).serialized()],
            file: file, line: line)
        for n in notes {
            XCTAssertEqual(n.parentId, failed, file: file, line: line)
            XCTAssertEqual(n.rootId, failed, file: file, line: line)
            XCTAssertNotNil(n.group, file: file, line: line)
        }
        XCTAssertEqual(Set(notes.map(\.group)).count, 1, "\(notes)", file: file, line: line)
    }

    func pythonNoteList() throws -> [Note] {
        try pythonNotes().map {
            Note(
                args: $0["args"]?.arrayValue ?? [], parentId: $0["parent_id"]?.stringValue,
                rootId: $0["root_id"]?.stringValue, group: $0["group"]?.stringValue)
        }
    }

    /// The reference: what a Python worker stores, and how it calls errbacks.
    func testPythonWorkerStoresTheseChildren() throws {
        let py = try pythonWorker()
        defer { py.stop() }
        let out = try probe()
        try checkChildren(out)
        let failed = try XCTUnwrap(out["fail"]?["id"]?.stringValue)
        XCTAssertTrue(try eventually(timeout: 10) { try self.pythonNotes().count >= 2 }, py.log)
        checkErrbacks(try pythonNoteList(), failed: failed)
    }

    /// A Celeris worker stores the same children for the same workflows, and sends the
    /// errbacks of a task that failed (a Python client's `apply_async(link_error=…)`).
    func testCelerisWorkerStoresTheSameChildrenAndRunsErrbacks() throws {
        let notes = LockedBox<[Note]>([])
        let worker = celerisWorker(notes: notes)
        defer { worker.stop() }
        let out = try probe()
        try checkChildren(out)
        let failed = try XCTUnwrap(out["fail"]?["id"]?.stringValue)
        XCTAssertTrue(eventually(timeout: 10) { notes.get().count >= 2 })
        checkErrbacks(notes.get(), failed: failed)
        // The errbacks' records hold what they returned: the failed id first.
        XCTAssertEqual(try client.command("LLEN", "celery").integer, 0)
    }

    /// A Celeris worker's failed task sends its errbacks to a Python worker on their queue.
    func testCelerisFailureRunsErrbacksOnAPythonWorker() throws {
        let py = try pythonWorker(queues: "errbacks")
        defer { py.stop() }
        let notes = LockedBox<[Note]>([])
        let worker = celerisWorker(notes: notes)
        defer { worker.stop() }
        let out = try probe(errbackQueue: "errbacks")
        let failed = try XCTUnwrap(out["fail"]?["id"]?.stringValue)
        XCTAssertTrue(try eventually(timeout: 10) { try self.pythonNotes().count >= 2 }, py.log)
        checkErrbacks(try pythonNoteList(), failed: failed)
        XCTAssertEqual(notes.get(), [], "the errbacks ran on the Python worker only")
    }

    /// A retried task sends no errbacks; it does once it fails for good.
    func testRetryDoesNotSendErrbacks() throws {
        let notes = LockedBox<[Note]>([])
        let worker = InProcessWorker(redis: redis) { registry in
            registry.register("ch.flaky", options: TaskOptions(maxRetries: 1)) { ctx in
                throw ctx.retry(after: 0, because: TaskFailure(type: "IOError", message: "busy"))
            }
            registry.register("ch.note") { ctx in
                let m = ctx.message
                notes.modify { $0.append(Note(args: m.args, parentId: m.parentId, rootId: m.rootId, group: m.group)) }
                return .array(m.args)
            }
        }
        defer { worker.stop() }
        var m = TaskMessage(task: "ch.flaky")
        m.embed = m.embed.setting("errbacks", [Signature("ch.note").json])
        try enqueue([m])
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id)?["status"] == "FAILURE" })
        XCTAssertTrue(eventually(timeout: 10) { !notes.get().isEmpty })
        let got = notes.get()
        XCTAssertEqual(got.count, 1, "one errback call, after the last try: \(got)")
        XCTAssertEqual(got.first?.args, [.string(m.id)])
        XCTAssertEqual(got.first?.parentId, m.id)
    }
}

extension ResultChildrenTests {
    /// A task past its hard time limit fails with TimeLimitExceeded, and its errbacks go out.
    func testHardTimeLimitFailureSendsErrbacks() throws {
        let notes = LockedBox<[Note]>([])
        let worker = InProcessWorker(redis: redis) { registry in
            registry.register(
                "ch.slow", options: TaskOptions(timeLimit: 0.2),
                async: { ctx in
                    try await ctx.sleep(seconds: 30)
                    return nil
                })
            registry.register("ch.note") { ctx in
                let m = ctx.message
                notes.modify { $0.append(Note(args: m.args, parentId: m.parentId, rootId: m.rootId, group: m.group)) }
                return .array(m.args)
            }
        }
        defer { worker.stop() }
        var m = TaskMessage(task: "ch.slow")
        m.embed = m.embed.setting("errbacks", [Signature("ch.note", args: ["late"]).json])
        try enqueue([m])
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id)?["status"] == "FAILURE" })
        XCTAssertEqual(try result(m.id)?["result"]?["exc_type"], "TimeLimitExceeded")
        XCTAssertTrue(eventually(timeout: 10) { !notes.get().isEmpty })
        XCTAssertEqual(notes.get().first?.args, [.string(m.id), "late"])
    }
}

/// The `/process` workflow through a frontend: the task's final status lists the
/// extraction tasks its workflow ran, one level, with their states.
final class ProcessChildrenTests: FrontendTestCase {
    func testProcessStatusListsItsExtractionTasks() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("children-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let docs = ["a.txt", "b.txt", "c.txt"]
        for (i, name) in docs.enumerated() {
            try "document \(i) words shared by every document here".write(
                toFile: (root as NSString).appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let worker = try CelerisProcess.worker(
            redis: redis, extra: ["-Q", "fetch_queue,extract_queue,compare_queue", "--documents-root", root])
        defer { worker.stop() }
        let sent = try HTTPClient.request("POST", port: port, path: "/process?blob_path=\(root)")
        XCTAssertEqual(sent.status, 200, sent.text)
        let id = try XCTUnwrap(sent.json?["task_id"]?.stringValue)
        var status: JSON = nil
        XCTAssertTrue(
            try eventually(timeout: 30, interval: 0.05) {
                status = try HTTPClient.request("GET", port: port, path: "/status/\(id)").json ?? nil
                return status["state"] == "SUCCESS" || status["state"] == "FAILURE"
            }, worker.log)
        XCTAssertEqual(status["state"], "SUCCESS", "\(status)")
        let listed = try XCTUnwrap(status["children"]?.arrayValue, "\(status)")
        XCTAssertEqual(listed.count, docs.count, "\(status)")
        // Each child is an extraction that ran (SUCCESS, its document's path in its result), in the group.
        let record = try XCTUnwrap(try result(id))
        let gid = try XCTUnwrap(record["children"]?[0]?[0]?[0]?.stringValue, "\(record)")
        var documents: [String] = []
        for child in listed {
            XCTAssertEqual(child["state"], "SUCCESS", "\(child)")
            XCTAssertEqual(child["group_id"]?.stringValue, gid, "\(child)")
            let childId = try XCTUnwrap(child["task_id"]?.stringValue)
            let childRecord = try XCTUnwrap(try result(childId))
            XCTAssertEqual(childRecord["group_id"]?.stringValue, gid)
            documents.append(((childRecord["result"]?["document"]?.stringValue ?? "") as NSString).lastPathComponent)
        }
        XCTAssertEqual(documents.sorted(), docs)
    }
}
