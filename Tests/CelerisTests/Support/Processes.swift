import FastCore
import Foundation
import XCTest

/// Where the test sources, fixtures and built executables are.
enum TestPaths {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static let repoRoot = fixtures.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The directory holding celeris-frontend / celeris-worker (next to the test bundle).
    static var binDir: URL {
        if let dir = ProcessInfo.processInfo.environment["CELERIS_BIN_DIR"] { return URL(fileURLWithPath: dir) }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/"
            && !FileManager.default.fileExists(atPath: url.appendingPathComponent("celeris-worker").path)
        {
            url = url.deletingLastPathComponent()
        }
        return url
    }

    static func executable(_ name: String) throws -> String {
        let path = binDir.appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestFailure("\(name) not built next to the tests (run `swift build` first, as `make test` does)")
        }
        return path
    }

    /// The Python with celery 5.7 and websockets (the venv `make test` sets up).
    static func python() throws -> String {
        let path =
            ProcessInfo.processInfo.environment["CELERIS_PYTHON"]
            ?? repoRoot.appendingPathComponent(".venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestFailure("no Python venv at \(path): run `make test` (it creates .venv with celery)")
        }
        return path
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A child process with its output in a log file; killed when dropped.
final class Spawned {
    let process = Process()
    let logURL: URL
    let name: String

    init(_ executable: String, _ args: [String], env: [String: String] = [:], cwd: URL? = nil, name: String) throws {
        self.name = name
        logURL = TestLogs.shared.directory.appendingPathComponent("\(name)-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = args
        process.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        if let cwd { process.currentDirectoryURL = cwd }
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try withSignalsUnblocked { try process.run() }
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }
    var isRunning: Bool { process.isRunning }

    /// SIGTERM, then SIGKILL after `grace` seconds.
    func stop(grace: Double = 5) {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop(grace: 2) }
}

/// Where spawned processes write their logs: one directory per test run
/// (`$TMPDIR/celeris-test-logs-<pid>`), removed when the run ends without a failure and
/// kept (its path in the failure messages) otherwise.
///
///     let url = TestLogs.shared.directory.appendingPathComponent("worker.log")
final class TestLogs: NSObject, XCTestObservation, @unchecked Sendable {
    static let shared: TestLogs = {
        let logs = TestLogs()
        XCTestObservationCenter.shared.addTestObserver(logs)
        return logs
    }()

    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("celeris-test-logs-\(getpid())")
    private let failed = LockedBox(false)

    override private init() {
        super.init()
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func testCase(
        _ testCase: XCTestCase, didFailWithDescription description: String, inFile filePath: String?,
        atLine lineNumber: Int
    ) {
        failed.set(true)
    }

    func testBundleDidFinish(_ testBundle: Bundle) {
        if !failed.get() { try? FileManager.default.removeItem(at: directory) }
    }
}

/// Test threads block SIGTERM/SIGINT and children inherit the mask: unblock around spawn.
func withSignalsUnblocked<T>(_ body: () throws -> T) rethrows -> T {
    var all = sigset_t()
    var old = sigset_t()
    sigfillset(&all)
    pthread_sigmask(SIG_UNBLOCK, &all, &old)
    defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
    return try body()
}

/// A port nobody listens on right now.
func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    _ = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// Poll `condition` until true or `timeout` seconds pass.
@discardableResult
func eventually(timeout: Double = 10, interval: Double = 0.02, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: interval)
    }
    return try condition()
}

/// `eventually` for async tests: waits with `Task.sleep`, holding no thread of the
/// cooperative pool (two threads on two cores) that the tasks it waits on may need; a
/// blocking wait there can starve the very task whose effect it polls for.
@discardableResult
func eventuallySuspending(
    timeout: Double = 10, interval: Double = 0.02, _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(Int(interval * 1000)))
    }
    return try await condition()
}

/// A real redis-server on a random loopback port, with nothing persisted.
final class RedisServer {
    let port: Int
    private var process: Spawned?

    init() throws {
        port = freePort()
        try start()
    }

    var url: String { "redis://127.0.0.1:\(port)/0" }
    var endpoint: RedisEndpoint { RedisEndpoint(host: "127.0.0.1", port: port) }

    func start() throws {
        process = try Spawned(
            "/usr/bin/redis-server",
            [
                "--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode",
                "no",
                "--enable-debug-command", "yes",
                // A replica's full sync streams the snapshot instead of writing dump.rdb into the working directory.
                "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0", "--dir", NSTemporaryDirectory(),
            ],
            name: "redis-\(port)")
        let up = eventually(timeout: 10) { (try? RedisConnection(endpoint: endpoint).command("PING")) != nil }
        if !up { throw TestFailure("redis-server did not start on \(port): \(process?.log ?? "")") }
    }

    func stop() {
        process?.stop()
        process = nil
    }

    /// A fresh blocking client.
    func client() throws -> RedisConnection { try RedisConnection(endpoint: endpoint) }

    deinit { stop() }
}

/// The two Celeris executables pointed at one Redis.
enum CelerisProcess {
    static func frontend(redis: RedisServer, port: Int, extra: [String] = []) throws -> Spawned {
        let p = try Spawned(
            try TestPaths.executable("celeris-frontend"),
            ["-b", redis.url, "--host", "127.0.0.1", "--port", "\(port)", "--loglevel", "debug"] + extra,
            name: "frontend")
        let up = eventually(timeout: 10) {
            (try? HTTPClient.request("GET", port: port, path: "/health").status) == 200
        }
        if !up { throw TestFailure("frontend did not come up: \(p.log)") }
        return p
    }

    /// A celeris-worker on `redis`, returned once it consumes and its remote-control listener is
    /// subscribed to the pidbox fanout (`/0.celery.pidbox` has one more subscriber than before the
    /// spawn), so a revoke or inspect broadcast sent right after this returns is heard.
    static func worker(redis: RedisServer, extra: [String] = [], step: String = "0") throws -> Spawned {
        let pidbox = KombuEnvelope.fanoutChannel(db: 0, exchange: "celery.pidbox")
        let client = try redis.client()
        func listeners() -> Int64 {
            (try? client.command("PUBSUB", "NUMSUB", pidbox).elements?.last?.integer) ?? -1
        }
        let before = listeners()
        let p = try Spawned(
            try TestPaths.executable("celeris-worker"), ["-b", redis.url, "-c", "2", "--loglevel", "debug"] + extra,
            env: ["CELERIS_STEP_SECONDS": step], name: "worker")
        let up = eventually(timeout: 10) { p.log.contains("connected to") }
        if !up { throw TestFailure("worker did not connect: \(p.log)") }
        // A worker that already ended (a test of its exit) is returned as it is.
        let listening = eventually(timeout: 10) { !p.isRunning || listeners() > max(before, 0) }
        if !listening {
            throw TestFailure("worker's pidbox listener did not subscribe to \(pidbox): \(p.log)")
        }
        return p
    }
}

/// Run a Python fixture script to completion; returns stdout, fails on non-zero exit.
func runPython(_ script: String, _ args: [String], env: [String: String] = [:], timeout: Double = 60) throws -> String {
    let p = try Spawned(
        try TestPaths.python(), [TestPaths.fixtures.appendingPathComponent(script).standardized.path] + args, env: env,
        cwd: TestPaths.fixtures, name: "py")
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(20_000) }
    if p.isRunning {
        // SIGTERM first: the script's own handlers (Tests/Browser/cdp.py) close what it started.
        p.stop(grace: 10)
        throw TestFailure("\(script) timed out:\n\(p.log)")
    }
    guard p.process.terminationStatus == 0 else {
        throw TestFailure("\(script) exited \(p.process.terminationStatus):\n\(p.log)")
    }
    return p.log
}
