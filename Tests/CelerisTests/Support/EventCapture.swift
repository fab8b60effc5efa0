import FastCore
import Foundation
import XCTest

extension RedisTestCase {
    /// Celery's event receiver (Fixtures/control_probe.py `events`) capturing for `seconds`,
    /// with `m` enqueued once it listens: the RESULT it printed (event types, Flower's
    /// State model of the workers and of `m`, the task-received events).
    func captureEvents(
        seconds: Int, enqueuing m: TaskMessage, file: StaticString = #filePath, line: UInt = #line
    ) throws -> JSON {
        let capture = try Spawned(
            try TestPaths.python(),
            [
                TestPaths.fixtures.appendingPathComponent("control_probe.py").path, redis.url, "events", "\(seconds)",
                m.id,
            ],
            cwd: TestPaths.fixtures, name: "events")
        // kombu's event receiver PSUBSCRIBEs to the celeryev channels: wait until it has.
        XCTAssertTrue(
            try eventually(timeout: 15) { try self.client.command("PUBSUB", "NUMPAT").integer ?? 0 >= 1 }, capture.log,
            file: file, line: line)
        try enqueue([m])
        XCTAssertTrue(eventually(timeout: 20) { !capture.isRunning }, capture.log, file: file, line: line)
        return try resultLine(capture.log)
    }
}
