import Foundation
import XCTest

/// The README's library sections quote Examples/WordCount, which `make test` compiles and runs
/// (System/ExampleTests): every ```swift and ```python block there must be lines of an example
/// file, in order, with the same relative indentation, so the README cannot drift from code that builds.
final class ReadmeSnippetTests: XCTestCase {
    static let sections = ["## Write your own tasks", "## Send tasks from Swift"]

    func testEveryCodeBlockOfTheLibrarySectionsIsExampleCode() throws {
        let readme = try String(
            contentsOf: TestPaths.repoRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let files = try Self.exampleFiles()
        XCTAssertTrue(files.keys.contains("Sources/WordCountTasks/WordCountTasks.swift"), "\(files.keys.sorted())")
        for heading in Self.sections {
            let blocks = try Self.codeBlocks(in: Self.section(heading, of: readme))
            XCTAssertFalse(blocks.isEmpty, "\(heading) quotes no code")
            for block in blocks {
                let found = files.filter { Self.contains($0.value, block) }.keys.sorted()
                XCTAssertFalse(
                    found.isEmpty,
                    "README \(heading): this block is not in Examples/WordCount:\n\(block.joined(separator: "\n"))")
            }
        }
    }

    /// The check itself: a block matches lines in order at any one indentation, not a paraphrase.
    func testMatchingIsExactButForCommonIndentation() {
        let file = ["enum E {", "    static let a = 1", "", "    static let b = 2", "}"]
        XCTAssertTrue(Self.contains(file, ["static let a = 1", "", "static let b = 2"]))
        XCTAssertTrue(Self.contains(file, ["enum E {", "    static let a = 1"]))
        XCTAssertFalse(Self.contains(file, ["static let a = 1", "static let b = 2"]))
        XCTAssertFalse(Self.contains(file, ["static let a = 2"]))
        XCTAssertFalse(Self.contains(file, ["enum E {", "static let a = 1"]))
    }

    // MARK: helpers

    /// The text from `heading` to the next `## ` heading.
    static func section(_ heading: String, of readme: String) throws -> [Substring] {
        let lines = readme.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(where: { $0 == heading }) else {
            throw TestFailure("README.md has no section \(heading)")
        }
        let end = lines[(start + 1)...].firstIndex { $0.hasPrefix("## ") } ?? lines.endIndex
        return Array(lines[(start + 1)..<end])
    }

    /// The ```swift and ```python blocks' lines.
    static func codeBlocks(in lines: [Substring]) throws -> [[String]] {
        var blocks: [[String]] = []
        var current: [String]?
        var fenced = false
        for line in lines {
            if line.hasPrefix("```") {
                if fenced {
                    if let block = current { blocks.append(block) }
                    current = nil
                } else if line == "```swift" || line == "```python" {
                    current = []
                }
                fenced.toggle()
            } else if fenced {
                current?.append(String(line))
            }
        }
        if fenced { throw TestFailure("README: a code block is not closed") }
        return blocks
    }

    /// Package.swift, the sources and the Python caller, by path under Examples/WordCount.
    static func exampleFiles() throws -> [String: [String]] {
        let root = ExampleTests.example
        var files: [String: [String]] = [:]
        let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)
        while let url = enumerator?.nextObject() as? URL {
            let path = String(url.standardized.path.dropFirst(root.standardized.path.count + 1))
            if path.hasPrefix(".build") {
                enumerator?.skipDescendants()
                continue
            }
            guard path.hasSuffix(".swift") || path.hasSuffix(".py") else { continue }
            let text = try String(contentsOf: url, encoding: .utf8)
            files[path] = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        }
        return files
    }

    /// Whether `block` is consecutive lines of `file`, each with the same added indentation
    /// (blank lines blank).
    static func contains(_ file: [String], _ block: [String]) -> Bool {
        guard let first = block.first, !first.isEmpty, file.count >= block.count else { return false }
        for start in 0...(file.count - block.count) {
            let line = file[start]
            guard line.hasSuffix(first) else { continue }
            let indent = String(line.dropLast(first.count))
            guard indent.allSatisfy({ $0 == " " }) else { continue }
            let fits = zip(file[start...], block).allSatisfy { fileLine, blockLine in
                blockLine.isEmpty ? fileLine.isEmpty : fileLine == indent + blockLine
            }
            if fits { return true }
        }
        return false
    }
}
