@testable import FastCore
import XCTest

/// A chord body's `celeris_progress` option: generic labels for `true`, the body's own
/// labels for an object (the document workflow's "extracting"), nothing otherwise.
final class ChordProgressTests: XCTestCase {
    func testTrueAsksForGenericLabels() throws {
        let p = try XCTUnwrap(ChordProgress(option: true))
        XCTAssertEqual(p.meta(ready: 3, size: 10).serialized(), #"{"stage": "joining", "parts": 10, "done": 3}"#)
        XCTAssertEqual(
            p.update(taskId: "t", ready: 3, size: 10, now: 1.5).serialized(),
            #"{"task_id": "t", "state": "PROGRESS", "stage": "joining", "done": 3, "parts": 10, "ts": 1.5}"#)
    }

    func testAnObjectNamesTheStageAndKeys() throws {
        let option = ChordProgress.option(stage: "extracting", total: "documents", done: "extracted")
        let p = try XCTUnwrap(ChordProgress(option: option))
        XCTAssertEqual(
            p.meta(ready: 2, size: 5).serialized(), #"{"stage": "extracting", "documents": 5, "extracted": 2}"#)
    }

    func testAnythingElseAsksForNothing() {
        XCTAssertNil(ChordProgress(option: nil))
        XCTAssertNil(ChordProgress(option: false))
        XCTAssertNil(ChordProgress(option: .null))
        XCTAssertNil(ChordProgress(option: "yes"))
        XCTAssertNil(ChordProgress(option: 1))
    }
}
