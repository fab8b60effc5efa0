import FastCore
import Foundation
import XCTest

/// Document features travel as base64 of little-endian u32s: the text is standard
/// base64 (what Python's `base64.b64decode` reads), and it reads back.
final class PackedU32Tests: XCTestCase {
    func testEncodesAsStandardBase64AndReadsBack() {
        for values: [UInt32] in [
            [], [0], [1, 2, 3], [.max, 0x0102_0304, 7], Array(0..<129).map { $0 &* 2_654_435_761 },
        ] {
            let text = PackedU32.encode(values)
            var bytes: [UInt8] = []
            for v in values { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
            XCTAssertEqual(text, Data(bytes).base64EncodedString(), "\(values)")
            XCTAssertEqual(PackedU32.decode(text), values)
        }
    }

    func testRejectsTextThatIsNotWholeValues() {
        XCTAssertNil(PackedU32.decode("AQID"))  // 3 bytes
        XCTAssertNil(PackedU32.decode("not base64!"))
    }
}
