@testable import FastCore
import Foundation
import XCTest

/// A Swift error a task throws is stored as Celery stores a Python exception, so Python
/// Celery 5.7's `AsyncResult.get()` raises an exception of the same name and message.
final class ErrorTypeTests: RedisTestCase {
    struct QuotaExceeded: Error, CustomStringConvertible {
        let limit: Int
        var description: String { "quota of \(limit) requests exceeded" }
    }
    struct Wrapped<T: Sendable>: Error {
        let value: T
    }
    struct Localized: LocalizedError, CustomStringConvertible {
        var errorDescription: String? { "the localized text" }
        var description: String { "the plain text" }
    }
    /// Named as a Python builtin: re-raised as the builtin.
    struct TimeoutError: Error, CustomStringConvertible {
        var description: String { "gave up after 3 s" }
    }

    func testPythonReRaisesSwiftErrorsByNameAndBuiltinsAsBuiltins() throws {
        let worker = InProcessWorker(redis: redis) { r in
            r.register("quota") { _ in throw QuotaExceeded(limit: 3) }
            r.register("typed") { _ in throw TaskFailure(type: "TypeError", message: "add() takes 2 arguments") }
            r.register("timeout") { _ in throw TimeoutError() }
        }
        let quota = TaskMessage(task: "quota")
        let typed = TaskMessage(task: "typed")
        let timeout = TaskMessage(task: "timeout")
        try enqueue([quota, typed, timeout])
        XCTAssertTrue(
            try eventually {
                try [quota, typed, timeout].allSatisfy { try self.result($0.id)?["status"] == "FAILURE" }
            })
        worker.stop()
        XCTAssertEqual(
            try result(quota.id)?["result"],
            ["exc_type": "QuotaExceeded", "exc_message": ["quota of 3 requests exceeded"], "exc_module": "celeris"])
        XCTAssertEqual(
            try result(timeout.id)?["result"],
            ["exc_type": "TimeoutError", "exc_message": ["gave up after 3 s"], "exc_module": "builtins"])

        let raised = try resultLine(try runPython("result_probe.py", [redis.url, quota.id, typed.id, timeout.id]))
        XCTAssertEqual(raised[quota.id]?["state"], "FAILURE")
        XCTAssertEqual(raised[quota.id]?["type"], "QuotaExceeded")
        XCTAssertEqual(raised[quota.id]?["message"], "quota of 3 requests exceeded")
        XCTAssertEqual(raised[quota.id]?["builtin"], false)
        XCTAssertEqual(
            raised[typed.id],
            [
                "state": "FAILURE", "type": "TypeError", "module": "builtins", "message": "add() takes 2 arguments",
                "builtin": true,
            ])
        XCTAssertEqual(
            raised[timeout.id],
            [
                "state": "FAILURE", "type": "TimeoutError", "module": "builtins", "message": "gave up after 3 s",
                "builtin": true,
            ])
    }

    /// The type name without generic parameters; a localized description before the plain one;
    /// a `TaskFailure` is itself.
    func testFailureOfSwiftErrors() {
        let wrapped = TaskFailure(error: Wrapped(value: 5))
        XCTAssertEqual(wrapped.type, "Wrapped")
        XCTAssertEqual(wrapped.module, "celeris")
        XCTAssertEqual(wrapped.arguments, ["Wrapped<Int>(value: 5)"])
        XCTAssertEqual(TaskFailure(error: Localized()).arguments, ["the localized text"])
        let own = TaskFailure(type: "KeyError", arguments: ["k"], module: "builtins")
        XCTAssertEqual(TaskFailure(error: own).resultJSON, own.resultJSON)
        XCTAssertEqual(TaskFailure(error: CancellationError()).type, "CancellationError")
    }
}
