import FastCore
import Foundation
import XCTest

/// Task ids are v4 UUIDs made from the OS CSPRNG, read in 4 KiB batches.
final class TaskIdTests: XCTestCase {
    func isV4(_ id: String) -> Bool {
        id.range(
            of: "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", options: .regularExpression)
            != nil
    }

    func testIdsAreDistinctVersion4UUIDs() {
        let ids = (0..<5000).map { _ in FastUUID.v4() }
        XCTAssertTrue(ids.allSatisfy(isV4), ids.first { !isV4($0) } ?? "")
        XCTAssertEqual(Set(ids).count, ids.count)
        XCTAssertEqual(Set(ids.map { $0.prefix(8) }).count, ids.count, "no shared 32-bit prefix either")
        XCTAssertEqual(TaskMessage(task: "add").id.count, 36)
    }

    /// A generator is not seeded: each reads its bytes from the OS, so two
    /// fresh generators do not agree (a seeded PRNG's copies would), and one
    /// refill of 4 KiB serves 256 ids.
    func testEachGeneratorReadsTheOSInBatches() {
        var a = FastUUID.Generator()
        var b = FastUUID.Generator()
        let fromA = (0..<300).map { _ in a.v4() }
        let fromB = (0..<300).map { _ in b.v4() }
        XCTAssertTrue(Set(fromA).isDisjoint(with: fromB))
        XCTAssertEqual(a.refills, 2, "256 ids per 4 KiB read, then a refill")
        XCTAssertTrue((fromA + fromB).allSatisfy(isV4))
        XCTAssertEqual(Set(fromA).count, 300, "distinct across the refill")
    }

    /// The bytes are uniformly random: every nibble position outside the fixed
    /// version/variant bits takes every value over a few thousand ids.
    func testEveryFreeNibbleVaries() {
        let ids = (0..<4000).map { _ in Array(FastUUID.v4().replacingOccurrences(of: "-", with: "").utf8) }
        for position in 0..<32 where position != 12 {
            let values = Set(ids.map { $0[position] })
            XCTAssertEqual(values.count, position == 16 ? 4 : 16, "nibble \(position)")
        }
    }
}
