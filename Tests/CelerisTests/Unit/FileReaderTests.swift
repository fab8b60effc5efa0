import CEventShim
import FastCore
import Foundation
import XCTest

/// Document reads through io_uring and through read(2), and the fallback when io_uring is refused.
final class FileReaderTests: XCTestCase {
    func file(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("celeris-io-\(UUID().uuidString)").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func contents(_ reader: FileReader, _ path: String) throws -> [UInt8] {
        try reader.withContents(of: path) { Array($0) }
    }

    func testUringAndReadGiveTheSameBytes() throws {
        var rng = SystemRandomNumberGenerator()
        let big = (0..<(3 * 1024 * 1024 + 17)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let small = Array("hello".utf8)
        let empty: [UInt8] = []
        let uring = FileReader(mode: .uring)
        try uring.validate()
        XCTAssertTrue(uring.usesUring)
        let plain = FileReader(mode: .socket)
        for data in [big, small, empty] {
            let path = try file(data)
            XCTAssertEqual(try contents(uring, path), data)
            XCTAssertEqual(try contents(plain, path), data)
            XCTAssertEqual(try contents(uring, path), data, "pooled buffers are reused cleanly")
        }
        XCTAssertThrowsError(try contents(uring, "/nonexistent/celeris")) {
            XCTAssertTrue("\($0)".contains("No such file"))
        }
    }

    /// Where io_uring is refused (EPERM under Docker's seccomp), `auto` falls back; forcing `uring` says why.
    func testRefusedUringFallsBackInAutoAndFailsWhenForced() throws {
        let refuse: @Sendable () -> (OpaquePointer?, Int32) = { (nil, EPERM) }
        let data = [UInt8](repeating: 7, count: 1 << 20)
        let path = try file(data)
        let auto = FileReader(mode: .auto, makeRing: refuse)
        XCTAssertEqual(try contents(auto, path), data)
        XCTAssertFalse(auto.usesUring)
        XCTAssertEqual(try contents(auto, path), data)
        let forced = FileReader(mode: .uring, makeRing: refuse)
        XCTAssertThrowsError(try forced.validate()) { XCTAssertTrue("\($0)".contains("io_uring unavailable")) }
    }
}
