import FastCore
import Foundation
import XCTest

/// The scaling guide's document pipeline on dedicated queues.
final class DocumentWorkflowTests: XCTestCase {
    /// This test's documents root: the workers read only inside it (`--documents-root`).
    var docsRoot = ""
    var rootFlag: [String] { ["--documents-root", docsRoot] }

    override func setUpWithError() throws {
        docsRoot = FileManager.default.temporaryDirectory.appendingPathComponent("docs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: docsRoot, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: docsRoot) }

    /// Generate a corpus with scripts/make_corpus.py; returns (dir, planted pair names, broken names).
    func corpus(_ n: Int, pairs: Int, words: Int = 0) throws -> (dir: String, pairs: Set<[String]>, broken: Set<String>)
    {
        let dir = (docsRoot as NSString).appendingPathComponent("corpus-\(UUID().uuidString)")
        _ = try runPython(
            "../../../scripts/make_corpus.py", [dir, "\(n)", "--pairs", "\(pairs)", "--broken", "--words", "\(words)"])
        let manifest = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: dir + ".planted.json"))))
        let planted = Set((manifest["pairs"]?.arrayValue ?? []).map { $0.arrayValue?.compactMap(\.stringValue) ?? [] })
        let broken = Set(manifest["broken"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        return (dir, planted, broken)
    }

    func name(_ path: JSON?) -> String { ((path?.stringValue ?? "") as NSString).lastPathComponent }

    func runWorkflow(port: Int, dir: String) throws -> JSON {
        let r = try HTTPClient.request("POST", port: port, path: "/process?blob_path=\(dir)")
        XCTAssertEqual(r.status, 200, r.text)
        let id = try XCTUnwrap(r.json?["task_id"]?.stringValue)
        var final: JSON?
        XCTAssertTrue(
            try eventually(timeout: 60, interval: 0.05) {
                let s = try HTTPClient.request("GET", port: port, path: "/status/\(id)").json
                if s?["status"] == "Completed" || s?["status"] == "Failed" { final = s }
                return final != nil
            })
        return try XCTUnwrap(final)
    }

    func testWorkflowFindsEveryPlantedPairAndReportsBrokenDocuments() throws {
        let (dir, planted, broken) = try corpus(50, pairs: 5)
        let redis = try RedisServer()
        let port = freePort()
        let frontend = try CelerisProcess.frontend(redis: redis, port: port)
        let fetch = try MetricsWorker(
            redis: redis, extra: ["-Q", "fetch_queue", "-c", "1", "-n", "fetch@test"] + rootFlag)
        let extract = try MetricsWorker(
            redis: redis, extra: ["-Q", "extract_queue", "-c", "2", "-n", "extract@test"] + rootFlag)
        let compare = try MetricsWorker(
            redis: redis, extra: ["-Q", "compare_queue", "-c", "1", "-n", "compare@test"] + rootFlag)
        let s = try runWorkflow(port: port, dir: dir)
        XCTAssertEqual(s["status"], "Completed", "\(s)")
        let result = try XCTUnwrap(s["result"])
        XCTAssertEqual(result["documents"], 52)
        XCTAssertEqual(result["compared"], 50)
        let found = Set((result["pairs"]?.arrayValue ?? []).map { [name($0["a"]), name($0["b"])].sorted() })
        XCTAssertEqual(found, planted, "every planted pair and no other above the threshold")
        XCTAssertEqual(Set((result["errors"]?.arrayValue ?? []).map { name($0["document"]) }), broken)
        XCTAssertEqual(result["clusters"]?.arrayValue?.count, 5)
        // Each stage ran on its own queue's worker, and only there.
        XCTAssertEqual(try fetch.received("fetch_documents_task"), 1)
        XCTAssertGreaterThan(try extract.received("extract_data_task"), 0)
        XCTAssertEqual(try compare.received("compare_data_task"), 1)
        for (worker, others) in [
            (fetch, ["extract_data_task", "compare_data_task"]),
            (extract, ["fetch_documents_task", "compare_data_task"]),
            (compare, ["fetch_documents_task", "extract_data_task"]),
        ] {
            for task in others { XCTAssertEqual(try worker.received(task), 0, "\(task) off its queue") }
        }
        XCTAssertTrue(frontend.isRunning)
    }

    /// Celeris fetches and extracts; a Python Celery worker serves compare_queue.
    func testWorkflowCompletesWithPythonWorkersOnCompareQueue() throws {
        let (dir, planted, _) = try corpus(20, pairs: 3)
        let redis = try RedisServer()
        let port = freePort()
        let frontend = try CelerisProcess.frontend(redis: redis, port: port)
        let worker = try CelerisProcess.worker(redis: redis, extra: ["-Q", "fetch_queue,extract_queue"] + rootFlag)
        let python = try PythonWorker.spawn(redis: redis, queues: "compare_queue")
        let s = try runWorkflow(port: port, dir: dir)
        XCTAssertEqual(s["result"]?["method"], "python-exact", "\(s)\n\(python.log)")
        let found = Set((s["result"]?["pairs"]?.arrayValue ?? []).map { [name($0["a"]), name($0["b"])].sorted() })
        XCTAssertEqual(found, planted)
        XCTAssertTrue(frontend.isRunning && worker.isRunning)
    }

    func testBadBlobPathFailsTheWorkflowWithTheCause() throws {
        let redis = try RedisServer()
        let port = freePort()
        let frontend = try CelerisProcess.frontend(redis: redis, port: port)
        let worker = try CelerisProcess.worker(
            redis: redis, extra: ["-Q", "fetch_queue,extract_queue,compare_queue"] + rootFlag)
        XCTAssertEqual(try HTTPClient.request("POST", port: port, path: "/process").status, 422)
        XCTAssertEqual(
            try HTTPClient.request("POST", port: port, path: "/process?blob_path=/x&threshold=2").status, 422)
        let s = try runWorkflow(port: port, dir: "/nonexistent/celeris")
        XCTAssertEqual(s["status"], "Failed")
        XCTAssertTrue(s["result"]?.stringValue?.contains("not a directory") ?? false, "\(s)")
        XCTAssertTrue(frontend.isRunning && worker.isRunning)
    }

    /// Outside the documents root (directly, through `..` or a symlink): the workflow fails
    /// with the error a missing directory gets, and nothing outside is listed or read.
    func testBlobPathOutsideTheDocumentsRootFailsLikeAMissingOne() throws {
        let redis = try RedisServer()
        let port = freePort()
        let frontend = try CelerisProcess.frontend(redis: redis, port: port)
        let worker = try CelerisProcess.worker(
            redis: redis, extra: ["-Q", "fetch_queue,extract_queue,compare_queue"] + rootFlag)
        try FileManager.default.createSymbolicLink(atPath: docsRoot + "/etc", withDestinationPath: "/etc")
        for location in ["/etc", docsRoot + "/../", docsRoot + "/etc", "/nonexistent/celeris"] {
            let s = try runWorkflow(port: port, dir: location)
            XCTAssertEqual(s["status"], "Failed", location)
            XCTAssertEqual(
                s["result"]?.stringValue,
                "blob location \(location) is not a directory under the documents root", "\(s)")
        }
        // A worker without a root reads nothing.
        let redis2 = try RedisServer()
        let port2 = freePort()
        let frontend2 = try CelerisProcess.frontend(redis: redis2, port: port2)
        let rootless = try CelerisProcess.worker(redis: redis2, extra: ["-Q", "fetch_queue,extract_queue,compare_queue"])
        let s = try runWorkflow(port: port2, dir: docsRoot)
        XCTAssertEqual(s["status"], "Failed")
        XCTAssertTrue(s["result"]?.stringValue?.contains("no documents root configured") ?? false, "\(s)")
        XCTAssertTrue(frontend.isRunning && worker.isRunning && frontend2.isRunning && rootless.isRunning)
    }

    /// Through the real tasks: a document over `--max-document-bytes` and a link to
    /// /etc/passwd are per-document errors (the link's says nothing of its target); a FIFO,
    /// a link to /dev/zero's directory and hidden files are not listed; nothing blocks.
    func testOversizedAndEscapingDocumentsAreReportedNotRead() throws {
        let redis = try RedisServer()
        let port = freePort()
        let frontend = try CelerisProcess.frontend(redis: redis, port: port)
        let worker = try CelerisProcess.worker(
            redis: redis,
            extra: ["-Q", "fetch_queue,extract_queue,compare_queue", "--max-document-bytes", "100"] + rootFlag)
        let dir = docsRoot + "/mixed"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data(String(repeating: "big words ", count: 20).utf8).write(to: URL(fileURLWithPath: dir + "/big.txt"))
        try Data("small words fit here".utf8).write(to: URL(fileURLWithPath: dir + "/small.txt"))
        try Data("hidden".utf8).write(to: URL(fileURLWithPath: dir + "/.hidden.txt"))
        XCTAssertEqual(mkfifo(dir + "/pipe.txt", 0o600), 0)
        try FileManager.default.createSymbolicLink(atPath: dir + "/passwd.txt", withDestinationPath: "/etc/passwd")
        try FileManager.default.createSymbolicLink(atPath: dir + "/dev", withDestinationPath: "/dev")
        let s = try runWorkflow(port: port, dir: dir)
        XCTAssertEqual(s["status"], "Completed", "\(s)")
        let real = try XCTUnwrap(
            realpath(dir, nil).map { p in
                defer { free(p) }; return String(cString: p)
            })
        XCTAssertEqual(s["result"]?["documents"], 4, "big, small, and the two links leaving the root")
        XCTAssertEqual(s["result"]?["compared"], 1)
        let errors = Dictionary(
            uniqueKeysWithValues: (s["result"]?["errors"]?.arrayValue ?? []).map {
                (name($0["document"]), $0["error"]?.stringValue ?? "")
            })
        XCTAssertEqual(errors["big.txt"], "cannot read \(real)/big.txt: 200 bytes, over the 100-byte limit")
        XCTAssertEqual(
            errors["passwd.txt"], "cannot read \(real)/passwd.txt: not a readable document under the documents root")
        XCTAssertEqual(errors["dev"], "cannot read \(real)/dev: not a readable document under the documents root")
        XCTAssertTrue(frontend.isRunning && worker.isRunning)
    }

    /// An empty directory (hidden files, a FIFO, an empty subdirectory: nothing to read)
    /// completes at once with an empty comparison, as Celery runs an empty chord's body.
    func testEmptyDirectoryCompletesTheWorkflow() throws {
        let redis = try RedisServer()
        let port = freePort()
        let frontend = try CelerisProcess.frontend(redis: redis, port: port)
        let worker = try CelerisProcess.worker(
            redis: redis, extra: ["-Q", "fetch_queue,extract_queue,compare_queue"] + rootFlag)
        let dir = docsRoot + "/empty"
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        try Data("hidden".utf8).write(to: URL(fileURLWithPath: dir + "/.hidden.txt"))
        XCTAssertEqual(mkfifo(dir + "/pipe.txt", 0o600), 0)
        let s = try runWorkflow(port: port, dir: dir)
        XCTAssertEqual(s["status"], "Completed", "\(s)")
        XCTAssertEqual(s["result"]?["documents"], 0)
        XCTAssertEqual(s["result"]?["pairs"], [])
        XCTAssertEqual(s["result"]?["errors"], [])
        XCTAssertTrue(frontend.isRunning && worker.isRunning)
    }

    func testExtractionAndComparisonUnits() throws {
        XCTAssertEqual(
            DocumentFeatures.normalisedWords(
                TextExtraction.html("<p>Caf&eacute; &amp; <b>Bar</b><script>x()</script> &#65;&#x42;</p>")),
            ["café", "bar", "ab"])
        XCTAssertEqual(
            DocumentFeatures.normalisedWords(TextExtraction.markdown("# Title\n*very* [link](http://x)")),
            ["title", "very", "link"])
        // LSH finds the same near-duplicates as exact Jaccard on a larger set.
        var rng = SystemRandomNumberGenerator()
        let vocab = (0..<5000).map { "w\($0)" }
        var docs = (0..<400).map { _ in (0..<300).map { _ in vocab.randomElement(using: &rng)! } }
        for k in 0..<5 {
            var copy = docs[k * 10]
            for _ in 0..<15 { copy[Int.random(in: 0..<copy.count)] = vocab.randomElement()! }
            docs.append(copy)
        }
        let features = docs.map { DocumentFeatures(text: $0.joined(separator: " ")) }
        let exact = try DocumentComparison.similarPairs(features, threshold: 0.5).pairs.map { [$0.a, $0.b] }
        let lsh = try DocumentComparison.similarPairs(features, threshold: 0.5, forceLSH: true)
        XCTAssertEqual(lsh.method, "minhash-lsh")
        XCTAssertEqual(Set(lsh.pairs.map { [$0.a, $0.b] }), Set(exact))
        XCTAssertEqual(exact.count, 5)
    }

    /// SIGKILL the extract worker mid-run: once a worker is back, the workflow
    /// completes with every document extracted and compare run exactly once.
    func testKilledExtractWorkerStillCompletesTheWorkflowOnce() throws {
        let (dir, planted, _) = try corpus(12, pairs: 2, words: 150_000)
        let redis = try RedisServer()
        let port = freePort()
        let frontend = try CelerisProcess.frontend(redis: redis, port: port)
        let others = try MetricsWorker(
            redis: redis, extra: ["-Q", "fetch_queue,compare_queue", "-n", "others@test"] + rootFlag)
        let first = try MetricsWorker(
            redis: redis,
            extra: [
                "-Q", "extract_queue", "-c", "1", "--prefetch-multiplier", "1", "--visibility-timeout", "2", "-n",
                "x1@test",
            ] + rootFlag)
        let r = try HTTPClient.request("POST", port: port, path: "/process?blob_path=\(dir)")
        let id = try XCTUnwrap(r.json?["task_id"]?.stringValue)
        XCTAssertTrue(
            try eventually(timeout: 60, interval: 0.1) { try first.received("extract_data_task") >= 3 }, first.log)
        kill(first.process.process.processIdentifier, SIGKILL)
        first.process.process.waitUntilExit()
        let client = try redis.client()
        let held = try client.command("HKEYS", "unacked").elements?.compactMap(\.text) ?? []
        XCTAssertGreaterThan(held.count, 0, "the killed worker held deliveries")
        let second = try MetricsWorker(
            redis: redis,
            extra: ["-Q", "extract_queue", "-c", "2", "--visibility-timeout", "2", "-n", "x2@test"] + rootFlag)
        var final: JSON?
        XCTAssertTrue(
            try eventually(timeout: 120, interval: 0.1) {
                final = try HTTPClient.request("GET", port: port, path: "/status/\(id)").json
                return final?["status"] == "Completed"
            }, "\(String(describing: final))\n\(second.log)")
        XCTAssertEqual(final?["result"]?["documents"], 14)
        let found = Set((final?["result"]?["pairs"]?.arrayValue ?? []).map { [name($0["a"]), name($0["b"])].sorted() })
        XCTAssertEqual(found, planted)
        // What the killed worker held was restored (none of it is held any more) and run.
        XCTAssertGreaterThan(try second.received("extract_data_task"), 0, second.log)
        XCTAssertEqual(try others.succeeded("compare_data_task"), 1, "compare ran once")
        XCTAssertEqual(try others.received("compare_data_task"), 1, "compare delivered once")
        XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0)
        XCTAssertTrue(frontend.isRunning)
    }
}
