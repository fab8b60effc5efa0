import FastCore
import Foundation
import XCTest

/// The dashboard at GET / driven by headless Chromium (Tests/Browser/dashboard_check.py over the
/// DevTools protocol) against a real redis-server, celeris-frontend and celeris-worker: a create_task
/// row reaches SUCCESS having shown every PROGRESS step, a /process workflow row reaches SUCCESS, the
/// worker is listed, and a task sent from outside the page is listed through the task_status firehose. Screenshots go to .build/test-artifacts/dashboard.png (and -auth.png).
final class DashboardBrowserTests: XCTestCase {
    var docsRoot = ""

    override func setUpWithError() throws {
        docsRoot = FileManager.default.temporaryDirectory.appendingPathComponent("dash-docs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: docsRoot + "/corpus", withIntermediateDirectories: true)
        let shared = "the quick brown fox jumps over the lazy dog while the cat sleeps in the warm afternoon sun "
        let documents = [
            "a.txt": String(repeating: shared, count: 4),
            "b.md": "# Copy\n" + String(repeating: shared, count: 4) + "one changed word",
            "c.html": "<p>" + String(repeating: "entirely different words about ships and harbours ", count: 6)
                + "</p>",
        ]
        for (name, text) in documents {
            try Data(text.utf8).write(to: URL(fileURLWithPath: "\(docsRoot)/corpus/\(name)"))
        }
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: docsRoot) }

    static let artifacts = TestPaths.repoRoot.appendingPathComponent(".build/test-artifacts")

    /// The Chromium dashboard_check.py will launch ($CHROMIUM or one on PATH).
    func chromium() -> String? {
        if let path = ProcessInfo.processInfo.environment["CHROMIUM"] {
            return FileManager.default.isExecutableFile(atPath: path) ? path : nil
        }
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
            for dir in dirs where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
                return "\(dir)/\(name)"
            }
        }
        return nil
    }

    /// Runs dashboard_check.py against a fresh stack; its JSON summary.
    func check(auth: Bool, screenshot: String) throws -> JSON {
        guard chromium() != nil else {
            throw TestFailure(
                "chromium not found (on PATH or $CHROMIUM): the dashboard browser tests need it; "
                    + "`make test` installs it (apt-get install chromium)")
        }
        let redis = try RedisServer()
        let port = freePort()
        let secret = "dashboard-test-secret-\(UUID().uuidString)"
        let frontend = try CelerisProcess.frontend(
            redis: redis, port: port, extra: auth ? ["--auth-secret", secret] : [])
        let worker = try CelerisProcess.worker(
            redis: redis,
            extra: [
                "-Q", "celery,fetch_queue,extract_queue,compare_queue", "-n", "dashboard@test", "--documents-root",
                docsRoot,
            ],
            step: "0.4")
        var args = [
            "--port", "\(port)", "--blob-path", docsRoot + "/corpus", "--worker", "dashboard@test", "--screenshot",
            Self.artifacts.appendingPathComponent(screenshot).path, "--timeout", "45",
        ]
        if auth {
            // Auth is really on: the data routes refuse a request without the token, the page itself does not.
            XCTAssertEqual(try HTTPClient.request("GET", port: port, path: "/stats").status, 401)
            XCTAssertEqual(try HTTPClient.request("GET", port: port, path: "/").status, 200)
            args += ["--token", BearerAuth(secret: secret).issue(subject: "dashboard", ttl: 3600, scopes: ["*"])]
        }
        try? FileManager.default.removeItem(at: Self.artifacts.appendingPathComponent(screenshot))
        let output: String
        do {
            output = try runPython("../../Browser/dashboard_check.py", args, timeout: 150)
        } catch {
            throw TestFailure("\(error)\n-- frontend log tail --\n\(frontend.log.suffix(3000))")
        }
        let last = output.split(separator: "\n").last.map(String.init) ?? ""
        let summary = try JSONParser.parse(Array(last.utf8))
        XCTAssertTrue(frontend.isRunning && worker.isRunning)
        return summary
    }

    func assertDashboardWorked(_ s: JSON, screenshot: String) throws {
        XCTAssertEqual(s["ok"], true, "\(s)")
        XCTAssertEqual(s["task"]?["state"], "SUCCESS", "\(s)")
        XCTAssertEqual(s["task"]?["name"], "create_task", "\(s)")
        let steps = (s["task"]?["steps"]?.stringValue ?? "").split(separator: ",").map(String.init)
        XCTAssertEqual(
            steps.filter { ["0", "1", "2"].contains($0) }, ["0", "1", "2"], "every PROGRESS step, in order")
        XCTAssertEqual(s["process"]?["state"], "SUCCESS", "\(s)")
        XCTAssertEqual(s["firehose_task"]?["state"], "SUCCESS", "a task sent from outside the page, over task_status")
        let hosts = (s["workers"]?.arrayValue ?? []).compactMap { $0["hostname"]?.stringValue }
        XCTAssertTrue(hosts.contains("dashboard@test"), "\(hosts)")
        XCTAssertEqual(s["connection"], "live")
        XCTAssertEqual(s["page_exceptions"], [])
        let png = try Data(contentsOf: Self.artifacts.appendingPathComponent(screenshot))
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "a PNG screenshot")
        XCTAssertGreaterThan(png.count, 10_000, "a screenshot of a rendered page, not a blank one")
    }

    func testDashboardShowsTaskProgressWorkflowAndWorkers() throws {
        let s = try check(auth: false, screenshot: "dashboard.png")
        try assertDashboardWorked(s, screenshot: "dashboard.png")
    }

    /// With --auth-secret: the token typed into #token (saved in localStorage) is what lets the page
    /// submit, read /stats and open /ws.
    func testDashboardWithAuthUsesTheTypedToken() throws {
        let s = try check(auth: true, screenshot: "dashboard-auth.png")
        try assertDashboardWorked(s, screenshot: "dashboard-auth.png")
    }
}
