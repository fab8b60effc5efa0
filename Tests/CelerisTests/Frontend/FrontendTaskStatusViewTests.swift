import FastCore
import XCTest

/// `GET /status/{id}` answers for every state a result record can hold.
final class FrontendTaskStatusViewTests: XCTestCase {
    private func render(_ state: TaskState, result: JSON) -> JSON {
        TaskStatusView.render(
            record: ResultRecord(taskId: "t", state: state, result: result, dateDone: 1).serialized())
    }

    func testNoRecordIsPending() {
        XCTAssertEqual(TaskStatusView.render(record: nil), ["status": "Pending...", "state": "PENDING"])
    }

    func testSuccessCarriesTheResult() {
        XCTAssertEqual(
            render(.success, result: ["sum": 5]), ["status": "Completed", "state": "SUCCESS", "result": ["sum": 5]])
    }

    func testFailureIsPythonsStrOfTheException() {
        let exc: JSON = ["exc_type": "ValueError", "exc_message": ["boom"], "exc_module": "builtins"]
        XCTAssertEqual(render(.failure, result: exc), ["status": "Failed", "state": "FAILURE", "result": "boom"])
        let key: JSON = ["exc_type": "KeyError", "exc_message": ["k"], "exc_module": "builtins"]
        XCTAssertEqual(render(.failure, result: key)["result"], "'k'")
    }

    func testPendingRecord() {
        XCTAssertEqual(render(.pending, result: .null), ["status": "Pending...", "state": "PENDING"])
    }

    func testOtherStatesShowTheirNameAndMeta() {
        for state in ["PROGRESS", "STARTED", "RETRY", "REVOKED", "RECEIVED"] {
            let record = #"{"status": "\#(state)", "result": {"progress": 2}, "task_id": "t"}"#
            XCTAssertEqual(
                TaskStatusView.render(record: record),
                ["status": .string(state), "state": .string(state), "meta": ["progress": 2]], state)
        }
        XCTAssertEqual(
            TaskStatusView.render(record: #"{"status": "STARTED"}"#),
            ["status": "STARTED", "state": "STARTED", "meta": .null])
    }

    func testUnreadableRecord() {
        let unreadable: JSON = ["status": "Failed", "state": "UNKNOWN", "result": "unreadable result record"]
        for record in ["", "{", "[]", #"{"status": 3}"#, #"{"result": 1}"#] {
            XCTAssertEqual(TaskStatusView.render(record: record), unreadable, record)
        }
    }
}
