import Foundation
import XCTest

@testable import FastCore

/// What a document task reads, and how: only inside the documents root, only regular
/// files under the size cap, formats checked from their first bytes, linear text scans,
/// a bounded `pdftotext`, and comparison input validated before use.
final class DocumentSafetyTests: RedisTestCase {
    var root = ""

    override func setUpWithError() throws {
        try super.setUpWithError()
        root = FileManager.default.temporaryDirectory.appendingPathComponent("docroot-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/docs/sub", withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
        DocumentPolicy.shared.set(DocumentPolicy())
        super.tearDown()
    }

    func write(_ rel: String, _ text: String) throws -> String {
        let path = root + "/" + rel
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func policy(maxBytes: Int = FileReader.defaultMaxBytes) throws -> DocumentPolicy {
        DocumentPolicy(root: try DocumentRoot(root + "/docs"), maxBytes: maxBytes)
    }

    func extractionError(_ path: String, _ policy: DocumentPolicy) -> String {
        do {
            let text = try DocumentTasks.text(of: path, policy: policy)
            return "read \(text.utf8.count) bytes"
        } catch {
            return "\(error)"
        }
    }

    // MARK: the documents root

    /// Outside the root, through a symlink, missing: one generic error, nothing about what exists.
    func testPathsOutsideTheRootGetTheSameErrorAsMissingOnes() throws {
        let p = try policy()
        _ = try write("docs/a.txt", "alpha beta gamma")
        _ = try write("outside.txt", "secret words here")
        try FileManager.default.createSymbolicLink(
            atPath: root + "/docs/passwd.txt", withDestinationPath: "/etc/passwd")
        try FileManager.default.createSymbolicLink(
            atPath: root + "/docs/sibling.txt", withDestinationPath: root + "/outside.txt")
        try FileManager.default.createSymbolicLink(atPath: root + "/docs/zero.txt", withDestinationPath: "/dev/zero")
        XCTAssertEqual(try DocumentTasks.text(of: root + "/docs/a.txt", policy: p), "alpha beta gamma")
        XCTAssertEqual(try DocumentTasks.text(of: "a.txt", policy: p), "alpha beta gamma", "relative to the root")
        _ = try write("docs/.hidden.txt", "hidden")
        try FileManager.default.createDirectory(atPath: root + "/docs/.git", withIntermediateDirectories: true)
        _ = try write("docs/.git/config.txt", "hidden too")
        let generic = "not a readable document under the documents root"
        for path in [
            "/etc/passwd", "/etc/does-not-exist", root + "/outside.txt", root + "/docs/../outside.txt",
            root + "/docs/passwd.txt", root + "/docs/sibling.txt", root + "/docs/zero.txt", root + "/docs/missing.txt",
            "../outside.txt", root + "/docs/.hidden.txt", root + "/docs/.git/config.txt",
        ] {
            XCTAssertEqual(extractionError(path, p), "cannot read \(path): \(generic)", path)
        }
        // Directories: the same error for outside, missing and not-a-directory.
        for location in [
            "/etc", "/nonexistent/celeris", root, root + "/docs/a.txt", "file:///etc", "../", root + "/docs/.git",
        ] {
            XCTAssertThrowsError(try DocumentStores.store(for: location, policy: p)) {
                XCTAssertEqual("\($0)", "blob location \(location) is not a directory under the documents root")
            }
        }
        XCTAssertThrowsError(try DocumentStores.store(for: "s3://bucket/x", policy: p))
        // No root configured: nothing is read.
        XCTAssertTrue(
            extractionError(root + "/docs/a.txt", DocumentPolicy()).contains("no documents root configured"))
        XCTAssertThrowsError(try DocumentStores.store(for: root + "/docs", policy: DocumentPolicy()))
    }

    /// A listing skips hidden names, FIFOs and links leading to special files or directories;
    /// a link leading outside (or nowhere) is listed and its read fails with the generic error.
    func testListingSkipsHiddenAndSpecialFiles() throws {
        let p = try policy()
        _ = try write("docs/a.txt", "one")
        _ = try write("docs/sub/b.md", "two")
        _ = try write("docs/.hidden.txt", "hidden")
        try FileManager.default.createDirectory(atPath: root + "/docs/.git", withIntermediateDirectories: true)
        _ = try write("docs/.git/config.txt", "hidden too")
        XCTAssertEqual(mkfifo(root + "/docs/pipe.txt", 0o600), 0)
        try FileManager.default.createSymbolicLink(atPath: root + "/docs/zero.txt", withDestinationPath: "/dev/zero")
        try FileManager.default.createSymbolicLink(atPath: root + "/docs/etc", withDestinationPath: "/etc")
        try FileManager.default.createSymbolicLink(atPath: root + "/docs/loop", withDestinationPath: root + "/docs")
        try FileManager.default.createSymbolicLink(
            atPath: root + "/docs/inside.txt", withDestinationPath: root + "/docs/a.txt")
        try FileManager.default.createSymbolicLink(
            atPath: root + "/docs/dangling.txt", withDestinationPath: "/nonexistent/celeris")
        let listed = try DocumentStores.store(for: root + "/docs", policy: p).list()
        let docs = try DocumentRoot(root + "/docs").path
        // Links leaving the root (to /dev/zero, to /etc) are listed like the dangling one:
        // whatever they lead to, their read gets the generic error.
        XCTAssertEqual(
            listed,
            ["a.txt", "dangling.txt", "etc", "inside.txt", "sub/b.md", "zero.txt"].map { docs + "/" + $0 })
        XCTAssertEqual(
            extractionError(docs + "/etc", p),
            "cannot read \(docs)/etc: not a readable document under the documents root")
        XCTAssertEqual(try DocumentTasks.text(of: docs + "/inside.txt", policy: p), "one")
        let store = try DocumentStores.store(for: root + "/docs", policy: p)
        XCTAssertEqual(try store.read(docs + "/inside.txt"), Array("one".utf8))
        XCTAssertThrowsError(try store.read(docs + "/etc/passwd")) {
            XCTAssertEqual("\($0)", "cannot read \(docs)/etc/passwd: not a readable document under the documents root")
        }
        XCTAssertTrue(
            extractionError(docs + "/dangling.txt", p).hasSuffix("not a readable document under the documents root"))
    }

    /// A FIFO, a device and a symlink are refused by the reader itself, without blocking.
    func testReaderRefusesFIFOsDevicesAndSymlinksWithoutBlocking() throws {
        let p = try policy()
        let fifo = root + "/docs/pipe.txt"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        XCTAssertTrue(extractionError(fifo, p).contains("not a regular file"), extractionError(fifo, p))
        let reader = FileReader(mode: .socket)
        for path in [fifo, "/dev/zero", "/dev/null"] {
            XCTAssertThrowsError(try reader.withContents(of: path) { $0.count }, path) {
                XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)")
            }
        }
        let link = root + "/passwd-link"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/etc/passwd")
        XCTAssertThrowsError(try reader.withContents(of: link) { $0.count }) {
            XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)")
        }
    }

    /// Over the cap: refused from the size alone; formats checked from the first bytes.
    func testSizeCapAndFormatCheckComeBeforeTheRead() throws {
        let p = try policy(maxBytes: 1000)
        let big = try write("docs/big.txt", String(repeating: "word ", count: 201))
        XCTAssertEqual(
            extractionError(big, p),
            "cannot read \(try DocumentRoot(root).path)/docs/big.txt: 1005 bytes, over the 1000-byte limit")
        let fits = try write("docs/fits.txt", String(repeating: "word ", count: 200))
        XCTAssertEqual(try DocumentTasks.text(of: fits, policy: p).utf8.count, 1000)
        let notPDF = try write("docs/fake.pdf", "just text, no header")
        XCTAssertEqual(extractionError(notPDF, p), "cannot extract \(notPDF): not a PDF (no %PDF- header)")
        let binary = try write("docs/binary.txt", "abc\u{0}def")
        XCTAssertEqual(extractionError(binary, p), "cannot extract \(binary): not a text document (binary content)")
        let odd = try write("docs/a.exe", "MZ")
        XCTAssertEqual(extractionError(odd, p), "unsupported format .exe")
        let reader = FileReader(mode: .socket)
        XCTAssertThrowsError(try reader.withContents(of: big, maxBytes: 1000) { $0.count }) {
            XCTAssertTrue("\($0)".contains("over the 1000-byte limit"), "\($0)")
        }
    }

    // MARK: text scans

    /// Unclosed openings cost one pass: 1 MB of `<script`, `<!--`, `<` or `[` with nothing
    /// closing them (quadratic under the old regexes: hours, caught by the CI timeout).
    func testTextScansAreLinearOnUnclosedOpenings() {
        let mb = 1 << 20
        XCTAssertEqual(TextExtraction.html(String(repeating: "<script", count: mb / 7)).utf8.count, mb / 7 * 7)
        XCTAssertEqual(TextExtraction.html("<script>" + String(repeating: "<script>x", count: mb / 9)), " ")
        XCTAssertEqual(TextExtraction.html("a<!--" + String(repeating: "<!--", count: mb / 4)), "a")
        XCTAssertEqual(TextExtraction.html(String(repeating: "<", count: mb)).utf8.count, mb)
        XCTAssertEqual(TextExtraction.html(String(repeating: "<b>", count: mb / 3)).utf8.count, mb / 3)
        XCTAssertEqual(TextExtraction.markdown(String(repeating: "[", count: mb)).utf8.count, mb)
        XCTAssertEqual(TextExtraction.markdown(String(repeating: "[a](", count: mb / 4)).utf8.count, mb)
        XCTAssertEqual(TextExtraction.markdown(String(repeating: "[a]", count: mb / 3)).utf8.count, mb / 3 * 3)
        // What the regexes did, the scans do.
        XCTAssertEqual(
            DocumentFeatures.normalisedWords(
                TextExtraction.html(
                    "<p>Caf&eacute; &amp; <b>Bar</b><SCRIPT type=x>if (a<b) x()</Script> <style>p{}</style>"
                        + "<!-- note --> &#65;&#x42; <scripts>kept</scripts> 3 < 4</p>")),
            ["café", "bar", "ab", "kept", "3"], "`< 4</p>` is a tag, as it was")
        XCTAssertEqual(
            DocumentFeatures.normalisedWords(
                TextExtraction.markdown("# Title\n*very* [link](http://x) [[nested](y) [no](link")),
            ["title", "very", "link", "nested", "no", "link"])
        XCTAssertEqual(TextExtraction.markdown("a --- b ** c"), "a   b   c")
    }

    // MARK: pdftotext

    func script(_ name: String, _ body: String) throws -> String {
        let path = root + "/" + name
        try Data("#!/bin/sh\n\(body)\n".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(chmod(path, 0o755), 0)
        return path
    }

    func pdfText(_ pdf: PDFText, _ path: String) throws -> String {
        try FileReader.withRegularFile(path, maxBytes: 1 << 20) { fd, _ in try pdf.text(of: fd, path: path) }
    }

    /// A child that never finishes is killed after the timeout; one that writes without end
    /// is killed at the output cap; a real PDF still reads (from the descriptor checked).
    func testPDFToTextIsTimedOutAndCapped() throws {
        let pdf = try write("docs/a.pdf", Self.tinyPDF)
        let hang = try script("hang.sh", "exec sleep 600")
        XCTAssertThrowsError(try pdfText(PDFText(tool: hang, timeout: 0.3), pdf)) {
            XCTAssertEqual("\($0)", "pdftotext took more than 0.3 s on \(pdf)")
        }
        let flood = try script("flood.sh", "exec yes celeris")
        XCTAssertThrowsError(try pdfText(PDFText(tool: flood, maxOutputBytes: 100_000), pdf)) {
            XCTAssertEqual("\($0)", "pdftotext wrote more than 100000 bytes of text for \(pdf)")
        }
        let fails = try script("fails.sh", "exit 1")
        XCTAssertThrowsError(try pdfText(PDFText(tool: fails), pdf)) { XCTAssertTrue("\($0)".contains("exit 1")) }
        let real = try XCTUnwrap(
            ["/usr/bin/pdftotext", "/usr/local/bin/pdftotext"].first {
                FileManager.default.isExecutableFile(atPath: $0)
            },
            "poppler-utils is installed by make")
        XCTAssertEqual(
            try pdfText(PDFText(tool: real), pdf).trimmingCharacters(in: .whitespacesAndNewlines), "Hello pdf world")
        XCTAssertEqual(
            try DocumentTasks.text(of: pdf, policy: policy()).trimmingCharacters(in: .whitespacesAndNewlines),
            "Hello pdf world")
    }

    static let tinyPDF = """
        %PDF-1.1
        1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj
        2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj
        3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 144]/Contents 4 0 R/Resources<</Font<</F1<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>>>>>>>endobj
        4 0 obj<</Length 44>>stream
        BT /F1 18 Tf 10 50 Td (Hello pdf world) Tj ET
        endstream endobj
        trailer<</Root 1 0 R>>
        %%EOF

        """

    // MARK: compare_data_task input, on a real worker

    func features(_ text: String, minhash: Int = 128) -> JSON {
        let f = DocumentFeatures(text: text)
        return [
            "document": .string("\(text.prefix(8)).txt"), "words": .int(Int64(f.words)),
            "shingles": .string(PackedU32.encode(f.shingles)),
            "minhash": .string(PackedU32.encode(Array(f.minhash.prefix(minhash)))),
        ]
    }

    /// 301 documents with a 4-value MinHash trapped in the LSH slicing (the worker died
    /// before its ack); now the task fails with the cause, and the worker goes on.
    func testMalformedComparisonInputFailsTheTaskNotTheWorker() throws {
        let worker = InProcessWorker(redis: redis, register: DocumentTasks.register)
        defer { worker.stop() }
        let short = (0..<301).map { features("document number \($0) with words", minhash: 4) }
        var good = features("a perfectly fine document")
        let cases: [(args: [JSON], message: String)] = [
            ([.array(short)], "compare_data_task: result 0 (document.txt): minhash has 4 values, expected 128"),
            ([.array([good, 7])], "compare_data_task: result 1: is not an object"),
            ([.array([["document": 3, "words": 1]])], "compare_data_task: result 0: document is not a string"),
            (
                [.array([good.setting("shingles", .string(PackedU32.encode([3, 2, 1])))])],
                "compare_data_task: result 0 (a perfec.txt): shingles must be sorted and unique"
            ),
            (
                [.array([good.setting("shingles", "not base64!")])],
                "compare_data_task: result 0 (a perfec.txt): shingles must be base64 little-endian u32 values"
            ),
            (
                [.array([good.setting("words", -1)])],
                "compare_data_task: result 0 (a perfec.txt): words must be an integer from 0 to 2147483647"
            ),
            ([.array([good]), "x"], "compare_data_task: threshold must be a number from 0 to 1"),
            ([.array([good]), 1.5], "compare_data_task: threshold must be a number from 0 to 1"),
        ]
        let messages = cases.map { TaskMessage(task: "compare_data_task", args: $0.args) }
        try enqueue(messages)
        for (m, c) in zip(messages, cases) {
            XCTAssertTrue(try eventually { try self.result(m.id)?["status"] == "FAILURE" }, c.message)
            XCTAssertEqual(try result(m.id)?["result"]?["exc_type"], "ValueError")
            XCTAssertEqual(try result(m.id)?["result"]?["exc_message"], [.string(c.message)])
        }
        // A well-formed list (an error entry included) still compares, through LSH past 300.
        good = features("a perfectly fine document")
        let many =
            (0..<301).map { features("document number \($0) with some words") } + [
                ["document": "x.txt", "error": "cannot read x.txt"], good, good,
            ]
        let ok = TaskMessage(task: "compare_data_task", args: [.array(many)])
        try enqueue([ok])
        XCTAssertTrue(try eventually { try self.result(ok.id)?["status"] == "SUCCESS" })
        let r = try XCTUnwrap(try result(ok.id)?["result"])
        XCTAssertEqual(r["method"], "minhash-lsh")
        XCTAssertEqual(r["compared"], 303)
        XCTAssertEqual(r["errors"]?.arrayValue?.count, 1)
        XCTAssertEqual(r["pairs"]?.arrayValue?.count, 1)
    }

    /// One MinHash for every document would make LSH collect n²/2 candidates: capped, with the cause.
    func testLSHCandidatesAreCapped() throws {
        let same = (0..<20).map { _ in DocumentFeatures(text: "the same words in every document") }
        XCTAssertThrowsError(
            try DocumentComparison.similarPairs(same, threshold: 0.5, forceLSH: true, maxCandidates: 100)
        ) {
            XCTAssertEqual(
                "\($0)", "more than 100 candidate pairs: too many near-identical MinHash signatures")
        }
        XCTAssertEqual(
            try DocumentComparison.similarPairs(same, threshold: 0.5, forceLSH: true, maxCandidates: 190).pairs.count,
            190)
    }

    /// Document tasks carry default soft and hard time limits (Celery task options).
    func testDocumentTasksHaveDefaultTimeLimits() {
        var registry = TaskRegistry()
        DocumentTasks.register(into: &registry)
        for name in ["fetch_documents_task", "extract_data_task", "compare_data_task"] {
            let o = registry.task(named: name)?.options
            XCTAssertNotNil(o?.softTimeLimit, name)
            XCTAssertNotNil(o?.timeLimit, name)
            XCTAssertLessThan(o?.softTimeLimit ?? 0, o?.timeLimit ?? 0, name)
        }
        XCTAssertLessThan(PDFText().timeout, DocumentTasks.extractOptions.softTimeLimit ?? 0)
    }

    /// An empty directory (on the in-process worker): the workflow completes with an empty comparison.
    func testEmptyDirectoryCompletesWithAnEmptyComparison() throws {
        DocumentPolicy.shared.set(try policy())
        let worker = InProcessWorker(redis: redis, register: DocumentTasks.register)
        defer { worker.stop() }
        _ = try write("docs/.hidden.txt", "only hidden files here")
        let m = TaskMessage(
            task: "fetch_documents_task", args: [.string(root + "/docs")], kwargs: [("process", true)])
        try enqueue([m])
        XCTAssertTrue(
            try eventually { try self.result(m.id)?["status"] == "SUCCESS" }, "\(String(describing: try? result(m.id)))"
        )
        let r = try XCTUnwrap(try result(m.id)?["result"])
        XCTAssertEqual(r["documents"], 0)
        XCTAssertEqual(r["compared"], 0)
        XCTAssertEqual(r["pairs"], [])
        XCTAssertEqual(r["errors"], [])
    }
}
