import FastCore
import Foundation
import XCTest

/// Examples/WordCount as its users run it: its own worker binary (`CelerisWorker.main` with
/// its typed async task), its Swift app (`CelerisClient`), a Python Celery 5.7 caller; and the
/// package resolved against Celeris pinned by version, where SwiftPM refuses `unsafeFlags`.
/// `make test` builds the example before the tests.
final class ExampleTests: XCTestCase {
    static let example = TestPaths.repoRoot.appendingPathComponent("Examples/WordCount")

    /// 250 words in three chunks of the task's 100: "to" 130 times, "be" 70, "or" 40, "not" 10.
    static let text: String = {
        var words: [String] = []
        for i in 0..<250 {
            words.append(i % 25 < 13 ? "To" : i % 25 < 20 ? "be," : i % 25 < 24 ? "or" : "not")
        }
        return words.joined(separator: " ")
    }()

    func testAppSendsToTheExampleWorkerAndPrintsProgressThenTheResult() throws {
        let redis = try RedisServer()
        let worker = try Self.startWorker(redis)
        let file = try Self.temporaryFile(Self.text)
        let run = try Self.run(
            try Self.binary("wordcount-app"), [file.path, "3"], env: ["CELERIS_BROKER_URL": redis.url])
        XCTAssertEqual(run.status, 0, run.output)
        let lines = run.output.split(separator: "\n").map(String.init)
        // The states sequence starts from the stored state, so a subscription made after the first
        // chunk starts with a later one: the lines are the last of these, in this order.
        let expected = ["counted 100 of 250 words", "counted 200 of 250 words", "counted 250 of 250 words"]
        let progress = lines.filter { $0.hasPrefix("counted ") }
        XCTAssertFalse(progress.isEmpty, run.output)
        XCTAssertEqual(progress, Array(expected.suffix(progress.count)), run.output)
        XCTAssertEqual(lines.last, "250 words; most frequent: to 130, be 70, or 40", run.output)
        // What the worker stored is Celery's record, kept for the task's resultExpires (3600 s).
        let sent = try XCTUnwrap(lines.first { $0.hasPrefix("sent wordcount.count ") }, run.output)
        let id = String(sent.dropFirst("sent wordcount.count ".count))
        let client = try redis.client()
        let record = try XCTUnwrap(try client.result(id))
        XCTAssertEqual(record["status"], "SUCCESS")
        XCTAssertEqual(
            record["result"],
            [
                "words": 250,
                "top": [["word": "to", "count": 130], ["word": "be", "count": 70], ["word": "or", "count": 40]],
            ])
        let ttl = try client.command("TTL", ResultRecord.key(id)).integer ?? -1
        XCTAssertTrue((3500...3600).contains(ttl), "TTL \(ttl)")
        XCTAssertTrue(worker.isRunning, worker.log)
    }

    func testAppExitsNonZeroWithTheTaskFailure() throws {
        let redis = try RedisServer()
        let worker = try Self.startWorker(redis)
        let file = try Self.temporaryFile(Self.text)
        let run = try Self.run(
            try Self.binary("wordcount-app"), [file.path, "-1"], env: ["CELERIS_BROKER_URL": redis.url])
        XCTAssertEqual(run.status, 1, run.output)
        XCTAssertTrue(run.output.contains("failed: ValueError('top must not be negative')"), run.output)
        XCTAssertTrue(worker.isRunning, worker.log)
    }

    /// Examples/WordCount/call_from_python.py: Celery 5.7 calls the typed task by position and by
    /// name (same result), and Python raises TypeError for arguments that do not fit.
    func testPythonCallsTheTypedTaskByPositionAndByNameAndGetsTypeErrors() throws {
        let redis = try RedisServer()
        let worker = try Self.startWorker(redis)
        let run = try Self.run(
            try TestPaths.python(), [Self.example.appendingPathComponent("call_from_python.py").path],
            env: ["CELERIS_BROKER_URL": redis.url], cwd: Self.example)
        XCTAssertEqual(run.status, 0, run.output)
        let lines = run.output.split(separator: "\n").map(String.init)
        let expected: JSON = ["words": 10, "top": [["word": "be", "count": 2], ["word": "to", "count": 2]]]
        for label in ["positional ", "keywords "] {
            let line = try XCTUnwrap(lines.first { $0.hasPrefix(label) }, run.output)
            XCTAssertEqual(try JSONParser.parse(String(line.dropFirst(label.count))), expected, line)
        }
        XCTAssertEqual(
            lines.filter { $0.hasPrefix("TypeError ") },
            [
                "TypeError wordcount.count() missing 1 required positional argument: 'top'",
                "TypeError wordcount.count() argument 'top' must be int, not str",
                "TypeError wordcount.count() got multiple values for argument 'top'",
            ], run.output)
        XCTAssertTrue(worker.isRunning, worker.log)
    }

    /// SwiftPM refuses `unsafeFlags` in a dependency pinned by version (not by path), when it loads
    /// the package graph, before compiling anything. The example is copied to depend on this tree
    /// tagged 0.2.0 by URL: its graph loads (what it builds is what the path build built). The same
    /// tree tagged 0.2.1 with one `unsafeFlags` setting added is refused, so the check can fail.
    func testExampleResolvesAgainstCelerisPinnedByVersionWithNoUnsafeFlags() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("celeris-versioned-\(UUID())")
        defer { try? FileManager.default.removeItem(at: root) }
        let repo = root.appendingPathComponent("celeris")
        let app = root.appendingPathComponent("WordCount")
        let fm = FileManager.default
        try fm.createDirectory(at: repo, withIntermediateDirectories: true)
        try fm.createDirectory(at: app, withIntermediateDirectories: true)
        for item in ["Package.swift", "Sources"] {
            try fm.copyItem(
                at: TestPaths.repoRoot.appendingPathComponent(item), to: repo.appendingPathComponent(item))
            try fm.copyItem(at: Self.example.appendingPathComponent(item), to: app.appendingPathComponent(item))
        }
        try Self.git(["init", "-q"], in: repo)
        try Self.git(["add", "-A"], in: repo)
        try Self.git(["commit", "-q", "-m", "release"], in: repo)
        try Self.git(["tag", "0.2.0"], in: repo)

        let manifest = app.appendingPathComponent("Package.swift")
        let byPath = #".package(name: "Celeris", path: "../..")"#
        let source = try String(contentsOf: manifest, encoding: .utf8)
        guard source.contains(byPath) else { throw TestFailure("Examples/WordCount/Package.swift lost \(byPath)") }
        try source.replacingOccurrences(of: byPath, with: #".package(url: "\#(repo.absoluteString)", from: "0.2.0")"#)
            .write(to: manifest, atomically: true, encoding: .utf8)

        let resolve = try Self.swift(["package", "resolve"], in: app)
        XCTAssertEqual(resolve.status, 0, resolve.output)
        let graph = try Self.swift(["package", "show-dependencies"], in: app)
        XCTAssertEqual(graph.status, 0, graph.output)
        XCTAssertTrue(graph.output.contains("celeris<\(repo.path)@0.2.0>"), graph.output)
        XCTAssertFalse(graph.output.contains("unsafe"), graph.output)

        let addUnsafe = """

            for target in package.targets where target.name == "FastCore" {
                target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
            }

            """
        let handle = try FileHandle(forWritingTo: repo.appendingPathComponent("Package.swift"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(addUnsafe.utf8))
        try handle.close()
        try Self.git(["commit", "-q", "-a", "-m", "unsafe"], in: repo)
        try Self.git(["tag", "0.2.1"], in: repo)
        let update = try Self.swift(["package", "update"], in: app)
        XCTAssertEqual(update.status, 0, update.output)
        let refused = try Self.swift(["package", "show-dependencies"], in: app)
        XCTAssertNotEqual(refused.status, 0, refused.output)
        XCTAssertTrue(
            refused.output.contains("the target 'FastCore' in product 'Celeris' contains unsafe build flags"),
            refused.output)
    }

    // MARK: helpers

    /// An executable of the example, built by `make test` (`swift build --package-path Examples/WordCount`).
    static func binary(_ name: String) throws -> String {
        let path = example.appendingPathComponent(".build/debug/\(name)").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestFailure(
                "\(path) is not built: run `make test` (it builds Examples/WordCount before the tests), "
                    + "or `swift build --package-path Examples/WordCount`")
        }
        return path
    }

    /// The example's worker on `redis`, once connected.
    static func startWorker(_ redis: RedisServer) throws -> Spawned {
        let p = try Spawned(
            try binary("wordcount-worker"), ["-b", redis.url, "-c", "4", "--loglevel", "debug"],
            name: "wordcount-worker")
        let up = eventually(timeout: 10) { p.log.contains("connected to") }
        if !up { throw TestFailure("wordcount-worker did not connect: \(p.log)") }
        return p
    }

    static func temporaryFile(_ text: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("wordcount-\(UUID()).txt")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// Run a process to its end (at most `timeout` seconds): its status and output (stdout and stderr).
    static func run(
        _ executable: String, _ args: [String], env: [String: String] = [:], cwd: URL? = nil, timeout: Double = 120
    ) throws -> (status: Int32, output: String) {
        let p = try Spawned(
            executable, args, env: env, cwd: cwd, name: URL(fileURLWithPath: executable).lastPathComponent)
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning {
            p.stop(grace: 1)
            throw TestFailure("\(executable) \(args) did not end in \(timeout) s:\n\(p.log)")
        }
        return (p.process.terminationStatus, p.log)
    }

    static func swift(_ args: [String], in dir: URL) throws -> (status: Int32, output: String) {
        try run("/usr/bin/env", ["swift"] + args, cwd: dir, timeout: 300)
    }

    static func git(_ args: [String], in dir: URL) throws {
        let r = try run(
            "/usr/bin/env", ["git", "-c", "user.name=celeris-test", "-c", "user.email=test@celeris.invalid"] + args,
            cwd: dir)
        if r.status != 0 { throw TestFailure("git \(args) failed:\n\(r.output)") }
    }
}
