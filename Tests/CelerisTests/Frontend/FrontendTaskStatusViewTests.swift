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

    // MARK: - children

    func testChildrenOfEachShape() {
        let record = #"""
            {"status": "SUCCESS", "result": 5, "children": [
              [["c1", null], null],
              [["g1", null], [[["m1", null], null], [["m2", ["g1", null]], null]]],
              [["c2", ["p", null]], null]
            ]}
            """#
        XCTAssertEqual(
            TaskStatusView.children(record: record),
            [
                .init(taskId: "c1"), .init(taskId: "m1", groupId: "g1"), .init(taskId: "m2", groupId: "g1"),
                .init(taskId: "c2"),
            ])
        let view = TaskStatusView.render(
            record: record,
            children: [
                (.init(taskId: "c1"), #"{"status": "SUCCESS", "result": 10}"#),
                (.init(taskId: "m1", groupId: "g1"), nil),
                (.init(taskId: "m2", groupId: "g1"), #"{"status": "PROGRESS", "result": {"progress": 1}}"#),
            ])
        XCTAssertEqual(
            view,
            [
                "status": "Completed", "state": "SUCCESS", "result": 5,
                "children": [
                    ["task_id": "c1", "status": "Completed", "state": "SUCCESS", "result": 10],
                    ["task_id": "m1", "group_id": "g1", "status": "Pending...", "state": "PENDING"],
                    [
                        "task_id": "m2", "group_id": "g1", "status": "PROGRESS", "state": "PROGRESS",
                        "meta": ["progress": 1],
                    ],
                ],
            ])
        XCTAssertTrue(
            view.serialized().hasPrefix(
                #"{"status": "Completed", "state": "SUCCESS", "result": 5, "children": [{"task_id": "c1""#))
    }

    func testNoChildrenLeavesTheAnswerAsItWas() {
        let record = ResultRecord(taskId: "t", state: .success, result: 5, dateDone: 1).serialized()
        XCTAssertEqual(TaskStatusView.children(record: record), [])
        XCTAssertEqual(TaskStatusView.render(record: record, children: []), TaskStatusView.render(record: record))
        XCTAssertNil(TaskStatusView.render(record: record, children: [])["children"])
        XCTAssertEqual(TaskStatusView.children(record: nil), [])
    }

    func testMalformedChildrenAreSkipped() {
        let junk = [
            #"{"status": "SUCCESS", "children": 5}"#, #"{"status": "SUCCESS", "children": "c1"}"#,
            #"{"status": "SUCCESS", "children": [5, null, {}, [], [null, null], [[5, null], null], [["a/b", null], null]]}"#,
            #"{"status": "SUCCESS", "children": [[["", null], null]]}"#, "[", #"["children"]"#,
            #"{"status": "SUCCESS", "children": [[["g", null], [7, [], [[null]]]]]}"#,
        ]
        for record in junk { XCTAssertEqual(TaskStatusView.children(record: record), [], record) }
        let mixed = #"{"status": "SUCCESS", "children": [7, [["ok", null], null], [["bad\nid", null], null]]}"#
        XCTAssertEqual(TaskStatusView.children(record: mixed), [.init(taskId: "ok")])
        let many = (0..<1500).map { #"[["c\#($0)", null], null]"# }.joined(separator: ", ")
        XCTAssertEqual(
            TaskStatusView.children(record: #"{"status": "SUCCESS", "children": [\#(many)]}"#).count,
            TaskStatusView.maxChildren)
    }

    /// GET /status looks up at most 100 children (one MGET of 100 keys, not 1000) and says
    /// how many the record lists; the record is parsed once for the view and the children.
    func testChildrenLookedUpAreCappedWithTheirTotal() {
        XCTAssertEqual(TaskStatusView.maxChildren, 100)
        let many = (0..<150).map { #"[["c\#($0)", null], null]"# }.joined(separator: ", ")
        let group = #"[["g", null], [[["m1", null], null], [["m2", null], null]]]"#
        let record = #"{"status": "SUCCESS", "result": 3, "children": [\#(many), \#(group)]}"#
        let parsed = TaskStatusView.parse(record: record)
        XCTAssertEqual(parsed.view, TaskStatusView.render(record: record))
        XCTAssertEqual(parsed.total, 152)
        XCTAssertEqual(parsed.children.count, 100)
        XCTAssertEqual(parsed.children.last, .init(taskId: "c99"))
        let entries = parsed.children.map { (child: $0, record: String?.none) }
        let view = TaskStatusView.render(parsed.view, children: entries, total: parsed.total)
        XCTAssertEqual(view["children"]?.arrayValue?.count, 100)
        XCTAssertEqual(view["children_total"], 152)
        let few = TaskStatusView.parse(record: #"{"status": "SUCCESS", "children": [\#(group)]}"#)
        XCTAssertEqual(few.total, 2)
        let small = TaskStatusView.render(
            few.view, children: few.children.map { (child: $0, record: nil) }, total: few.total)
        XCTAssertNil(small["children_total"], "no total when every child is listed")
        XCTAssertEqual(TaskStatusView.parse(record: nil).view, TaskStatusView.render(record: nil))
        XCTAssertEqual(TaskStatusView.parse(record: "{").total, 0)
    }
}
