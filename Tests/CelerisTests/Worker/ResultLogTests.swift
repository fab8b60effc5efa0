import FastCore
import Foundation
import Logging
import XCTest

/// A task's result is logged as Celery logs it: its repr cut to `resultrepr_maxsize`
/// (1024) characters, while the stored result is whole. The log text is the subject
/// here, so the worker's info-level messages are captured in process.
final class ResultLogTests: RedisTestCase {
    func testALargeResultIsLoggedCutAndStoredWhole() throws {
        let big = String(repeating: "é", count: 300_000) + "end"
        let lines = LockedBox<[String]>([])
        var registry = TaskRegistry()
        registry.register("big") { _ in ["text": .string(big), "n": 1] }
        var logger = Logger(label: "result-log") { _ in LineRecorder(lines: lines) }
        logger.logLevel = .info
        let consumer = Consumer(
            configuration: WorkerConfiguration(
                endpoint: redis.endpoint, concurrency: 1, hostname: "celeris@log", stepSeconds: 0),
            registry: registry, logger: logger)
        let stopped = DispatchSemaphore(value: 0)
        Thread {
            consumer.run()
            stopped.signal()
        }.start()
        defer {
            consumer.stop()
            XCTAssertEqual(stopped.wait(timeout: .now() + 10), .success, "consumer did not stop")
        }
        let m = TaskMessage(task: "big")
        try enqueue([m])
        XCTAssertTrue(try eventually(timeout: 10) { try self.result(m.id) != nil })
        XCTAssertEqual(try result(m.id)?["result"]?["text"], .string(big), "the stored result is whole")
        let prefix = "Task big[\(m.id)] succeeded in "
        XCTAssertTrue(eventually(timeout: 5) { lines.get().contains { $0.hasPrefix(prefix) } })
        let line = try XCTUnwrap(lines.get().first { $0.hasPrefix(prefix) })
        let shown = try XCTUnwrap(line.range(of: "s: ").map { String(line[$0.upperBound...]) })
        XCTAssertEqual(shown.unicodeScalars.count, PythonRepr.resultMaxLength)
        XCTAssertTrue(shown.hasPrefix("{'text': 'éé"), shown)
        XCTAssertTrue(shown.hasSuffix("é..."), shown)
    }

    /// The cut repr is the whole repr's beginning, and a short repr is not cut.
    func testCutReprIsThePrefixOfTheWholeRepr() {
        let values: [JSON] = [
            .string(String(repeating: "a'b\\", count: 500)), .array((0..<1000).map { .int(Int64($0)) }),
            .object((0..<300).map { ("k\($0)", .array([.double(1.5), nil, true, "x"])) }), ["short": [1, 2]],
        ]
        for v in values {
            let whole = PythonRepr.repr(v)
            let cut = PythonRepr.repr(v, limit: 100)
            if whole.unicodeScalars.count <= 100 {
                XCTAssertEqual(cut, whole)
            } else {
                XCTAssertEqual(cut.unicodeScalars.count, 100)
                XCTAssertEqual(String(cut.dropLast(3)), String(whole.prefix(97)))
                XCTAssertTrue(cut.hasSuffix("..."))
            }
        }
        XCTAssertEqual(PythonRepr.repr(["short": [1, 2]], limit: 100), "{'short': [1, 2]}")
    }
}

/// Keeps every message logged at info level or above.
private struct LineRecorder: LogHandler {
    let lines: LockedBox<[String]>
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .info
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) { lines.modify { $0.append(event.message.description) } }
}
