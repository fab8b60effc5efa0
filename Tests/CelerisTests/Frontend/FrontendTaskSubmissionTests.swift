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
}
