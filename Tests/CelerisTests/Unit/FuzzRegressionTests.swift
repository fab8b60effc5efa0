@testable import FastCore
import Foundation
import XCTest

/// Inputs the Swift fuzz targets (Tests/Fuzz/Swift, `make fuzz`) found trapping a
/// process, each kept as a regression test; the input itself is committed in the
/// target's corpus (Tests/Fuzz/corpus/<target>/crash-*).
final class FuzzRegressionTests: XCTestCase {
    /// `corpus/celery_time/crash-isoformat-below-int-min`: a due time past `Int` (a huge
    /// countdown, a tiny rate limit in `inspect scheduled`) trapped converting to `Int`.
    /// Any `Double` formats now; times past `widestEpoch` are written as that bound.
    func testIsoformatWritesAnyDouble() {
        let far = "316889355-01-25T17:46:40.000000+00:00"
        // Before year 0 the date is glibc's `gmtime_r`'s (a day off the proleptic calendar there).
        let farBack = CeleryTime.isoformat(-CeleryTime.widestEpoch)
        XCTAssertTrue(farBack.hasPrefix("-316885416-12-"), farBack)
        XCTAssertEqual(CeleryTime.isoformat(CeleryTime.widestEpoch), far)
        XCTAssertEqual(CeleryTime.isoformat(.infinity), far)
        XCTAssertEqual(CeleryTime.isoformat(1e300), far)
        XCTAssertEqual(CeleryTime.isoformat(Double(Int.max)), far)
        XCTAssertEqual(CeleryTime.isoformat(-.infinity), farBack)
        XCTAssertEqual(CeleryTime.isoformat(-1.1004247622256236e+49), farBack, "the fuzzer's input")
        XCTAssertEqual(CeleryTime.isoformat(.nan), "1970-01-01T00:00:00.000000+00:00")
        XCTAssertEqual(CeleryTime.isoformat(253_402_300_800), "10000-01-01T00:00:00.000000+00:00", "in range: kept")
    }

    /// `corpus/resp/crash-oom-be6d0fd9a45c18d3`: an array header naming 388,888,888 elements made
    /// hiredis 0.14's reader allocate them (3 GB) before reading any. An array naming more
    /// elements than the bytes left could hold is not a complete reply: refused, nothing allocated.
    func testRESPArrayLongerThanItsBytesIsRefusedWithoutAllocating() {
        let input = Array("*388888888\r\n*1\r\n*0\r\n$0\r\n\r\n+QUMUED\r\n".utf8)
        XCTAssertNil(RESP.parse(input))
        XCTAssertNil(RESP.parse(Array("*4\r\n:1\r\n:2\r\n".utf8)), "4 named, 2 present")
        XCTAssertEqual(
            RESP.parse(Array("*2\r\n$1\r\na\r\n:1\r\n".utf8)), .array([.string(Array("a".utf8)), .integer(1)]))
        XCTAssertEqual(RESP.parse(Array("*3\r\n+\r\n+\r\n+\r\n".utf8))?.elements?.count, 3, "3 bytes an element fit")
        XCTAssertEqual(RESP.parse(Array("*-1\r\n".utf8)), .null)
        XCTAssertEqual(RESP.parse(Array("$-1\r\n".utf8)), .null)
    }

    /// A message's arguments nested as deep as the JSON reader allows (`maxDepth`), and a
    /// chain of signatures as deep, are read, written back, repr'd and decoded as a canvas
    /// on a thread with an executor's stack (`ExecutorPool`: 1 MiB), where a task's result
    /// and follow-ups are made, without overflowing it; one level more is refused.
    func testDeepestAcceptedNestingFitsAnExecutorStack() throws {
        let depth = JSONParser.Reader.maxDepth + 1  // levels 0...maxDepth
        let arrays = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        XCTAssertThrowsError(try JSONParser.parse("[" + arrays + "]"), "one level past maxDepth")
        var chain = #"{"task": "leaf"}"#
        for _ in 0..<(depth / 4 - 1) {
            chain = #"{"task": "c", "subtask_type": "chain", "kwargs": {"tasks": ["# + chain + "]}}"
        }
        let texts = [arrays, chain]
        let outcome = LockedBox<[String]>([])
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            for text in texts {
                guard let value = try? JSONParser.parse(text) else {
                    outcome.modify { $0.append("refused") }
                    continue
                }
                let same = (try? JSONParser.parse(value.serialized())) == value
                _ = PythonRepr.repr(value)
                let canvas = (try? Canvas(decoding: value)) != nil
                outcome.modify { $0.append("\(same) \(canvas)") }
            }
            done.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
        done.wait()
        XCTAssertEqual(outcome.get(), ["true false", "true true"])
    }
}
