import FastCore
import Foundation
import XCTest

/// Numbers at the edges of Int64 in the builtin tasks: a float result, never a wrapped or trapped one.
final class BuiltinTaskBoundsTests: RedisTestCase {
    func testSumsPastInt64AreFloatsNotWrapped() throws {
        let worker = InProcessWorker(redis: redis)
        defer { worker.stop() }
        let tsum = TaskMessage(task: "tsum", args: [[.int(Int64.max), 1]])
        let add = TaskMessage(task: "add", args: [.int(Int64.min), -1])
        try enqueue([tsum, add])
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(tsum.id) != nil && self.result(add.id) != nil })
        XCTAssertEqual(try result(tsum.id)?["result"], .double(Double(Int64.max) + 1))
        XCTAssertEqual(try result(add.id)?["result"], .double(Double(Int64.min) - 1))
    }
}
