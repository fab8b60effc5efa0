import FastCore
import Foundation
import XCTest

/// The OCI image (`Dockerfile`, its `--target runtime` path from release binaries) and `compose.yaml`,
/// built and run with podman on this machine: a task sent through the frontend's container runs in
/// the worker's container, the health check passes, the worker runs as uid 10001 and says once that
/// io_uring is refused under the default seccomp profile, and `podman-compose up --scale worker=2`
/// brings up the seed's stack.
///
/// Skips (with the reason) where podman, runc, a Debian bookworm base image (built once with
/// debootstrap and cached: `/var/tmp/celeris-bookworm-rootfs`, image `localhost/bookworm-base`) or the
/// release binaries (`swift build -c release`; or `CELERIS_RELEASE_BIN_DIR`) are missing.
/// `CELERIS_CONTAINER_BASE` names another base image. Everything runs on the host network, on
/// loopback ports picked per run.
final class ContainerTests: XCTestCase {
    static let image = "localhost/celeris:container-test"
    static let redisImage = "localhost/celeris-test-redis:bookworm"

    /// Build once per test run (both tests use the image).
    nonisolated(unsafe) static var built: Result<Podman.Build, Error>?

    func setUpPodman() throws -> (Podman, Podman.Build) {
        let podman = try Podman.find()
        if Self.built == nil {
            Self.built = Result { try podman.buildImage(tag: Self.image, redisTag: Self.redisImage) }
        }
        switch Self.built! {
        case .success(let build): return (podman, build)
        case .failure(let error as XCTSkip): throw error
        case .failure(let error): throw error
        }
    }

    func testImageRunsATaskAsNonRootWithHealthCheck() throws {
        let (podman, build) = try setUpPodman()
        print(
            "container image \(Self.image): \(build.sizeBytes / 1_000_000) MB (\(build.sizeBytes) bytes; base \(build.baseSizeBytes / 1_000_000) MB, Celeris layers \((build.sizeBytes - build.baseSizeBytes) / 1_000_000) MB), built from \(build.binaries) in \(String(format: "%.1f", build.seconds)) s"
        )
        // Stripped debug binaries (CI's) are larger than release ones.
        XCTAssertLessThan(
            build.sizeBytes - build.baseSizeBytes, build.binaries.hasSuffix("/debug") ? 300_000_000 : 150_000_000,
            "runtime layers: the binaries, Swift runtime libraries and 6 Debian libraries")

        let tag = UUID().uuidString.prefix(8).lowercased()
        let (redisPort, httpPort, metricsPort) = (freePort(), freePort(), freePort())
        let broker = "redis://127.0.0.1:\(redisPort)/0"
        let names = ["redis", "frontend", "worker"].map { "celeris-ct-\($0)-\(tag)" }
        defer { for name in names { _ = try? podman.run(["rm", "-f", "-t", "2", name], timeout: 30) } }

        try podman.check([
            "run", "-d", "--name", names[0], "--network", "host", Self.redisImage,
            "redis-server", "--port", "\(redisPort)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        ])
        try podman.check([
            "run", "-d", "--name", names[1], "--network", "host", "-e", "CELERIS_BROKER_URL=\(broker)",
            "-e", "CELERIS_HEALTH_PORT=\(httpPort)",
            Self.image, "--host", "127.0.0.1", "--port", "\(httpPort)",
        ])
        try podman.check([
            "run", "-d", "--name", names[2], "--network", "host", "-e", "CELERIS_BROKER_URL=\(broker)",
            "--entrypoint", "celeris-worker", "--health-cmd", "celeris-healthcheck \(metricsPort) /metrics",
            Self.image, "-Q", "celery", "-c", "2", "--metrics-port", "\(metricsPort)", "--metrics-host", "127.0.0.1",
            "--step-seconds", "0",
        ])
        let up = eventually(timeout: 30, interval: 0.1) {
            (try? HTTPClient.request("GET", port: httpPort, path: "/health").status) == 200
        }
        XCTAssertTrue(up, "frontend /health: \(podman.tail(names[1]))")
        let connected = eventually(timeout: 30, interval: 0.1) { podman.logs(names[2]).contains("connected to") }
        XCTAssertTrue(connected, "worker log: \(podman.tail(names[2]))")

        // A task through the frontend's container, run by the worker's.
        let sent = try HTTPClient.request(
            "POST", port: httpPort, path: "/tasks", body: #"{"task": "add", "args": [2, 3]}"#)
        XCTAssertEqual(sent.status, 200, sent.text)
        let id = try XCTUnwrap(sent.json?["task_id"]?.stringValue, sent.text)
        var last = ""
        let done = eventually(timeout: 30, interval: 0.05) {
            last = (try? HTTPClient.request("GET", port: httpPort, path: "/status/\(id)").text) ?? ""
            return last.contains("SUCCESS")
        }
        XCTAssertTrue(done, "status: \(last)\nworker: \(podman.tail(names[2]))")
        XCTAssertTrue(last.contains(#""result": 5"#), last)

        // The image's HEALTHCHECK (frontend: /health) and the worker's (its metrics server).
        XCTAssertEqual(try podman.run(["healthcheck", "run", names[1]]).status, 0)
        XCTAssertEqual(try podman.run(["healthcheck", "run", names[2]]).status, 0)
        XCTAssertEqual(try podman.output(["inspect", "--format", "{{.State.Health.Status}}", names[1]]), "healthy")
        XCTAssertEqual(try podman.output(["inspect", "--format", "{{.State.Health.Status}}", names[2]]), "healthy")

        // Non-root: the worker's process (pid 1 in its container) runs as 10001:10001.
        let status = try podman.output(["exec", names[2], "cat", "/proc/1/status"])
        let uid = status.split(separator: "\n").first { $0.hasPrefix("Uid:") }.map(String.init) ?? status
        XCTAssertEqual(
            uid.split(whereSeparator: \.isWhitespace).dropFirst().map(String.init),
            ["10001", "10001", "10001", "10001"])
        XCTAssertTrue(status.contains("Gid:\t10001"), status)

        // Under podman's default seccomp profile (no io_uring_setup) the worker's broker
        // connection falls back to plain sockets (--io auto) and says so once, and works (the task above).
        let log = podman.logs(names[2])
        XCTAssertEqual(log.components(separatedBy: "connected to ").count - 1, 1, log)
        XCTAssertTrue(log.contains("(socket), consuming celery"), log)
    }

    /// compose.yaml with podman-compose: redis, the frontend and two replicas of `worker`
    /// (`--scale worker=2`), both connected; tasks sent to the frontend's published port succeed.
    /// podman-compose: `CELERIS_PODMAN_COMPOSE`, else the one on PATH
    /// (1.1 or later: Debian 12's 1.0.3 ignores `--scale`; `pip install podman-compose`).
    func testComposeUpScalesWorkers() throws {
        let (podman, _) = try setUpPodman()
        let env = ProcessInfo.processInfo.environment
        // `make test` installs podman-compose 1.x into the test venv (Tests/requirements.txt).
        let venvCompose = TestPaths.repoRoot.appendingPathComponent(".venv/bin/podman-compose").path
        let inVenv = FileManager.default.isExecutableFile(atPath: venvCompose) ? venvCompose : nil
        guard let compose = env["CELERIS_PODMAN_COMPOSE"] ?? inVenv ?? Podman.which("podman-compose") else {
            throw XCTSkip("podman-compose not installed (pip install podman-compose; set CELERIS_PODMAN_COMPOSE)")
        }
        let version = try podman.exec(compose, ["version"], env: [:], timeout: 60).output
        if version.contains("version 1.0.") || version.contains("version 0.") {
            throw XCTSkip(
                "\(compose) is too old for --scale (needs 1.1+): \(version.split(separator: "\n").last ?? "")")
        }
        let project = "celerisct\(UUID().uuidString.prefix(6).lowercased())"
        let httpPort = freePort()
        let composeEnv = [
            "CELERIS_IMAGE": Self.image, "REDIS_IMAGE": Self.redisImage, "CELERIS_HTTP_PORT": "\(httpPort)",
        ]
        let file = TestPaths.repoRoot.appendingPathComponent("compose.yaml").path
        let base = ["--podman-args=--runtime \(podman.runtime)", "-p", project, "-f", file]
        defer {
            _ = try? podman.exec(compose, base + ["down", "-t", "2"], env: composeEnv, timeout: 120)
            // `down` leaves the replicas --scale added (and what they depend on): remove by label.
            let label = "label=io.podman.compose.project=\(project)"
            let left = (try? podman.output(["ps", "-aq", "--filter", label]))?.split(separator: "\n").map(String.init)
            if let left, !left.isEmpty { _ = try? podman.run(["rm", "-f", "-t", "2"] + left, timeout: 60) }
            _ = try? podman.run(["network", "rm", "-f", "\(project)_default"], timeout: 60)
        }
        let up = try podman.exec(
            compose, base + ["up", "-d", "--no-build", "--scale", "worker=2", "redis", "frontend", "worker"],
            env: composeEnv, timeout: 180)
        XCTAssertEqual(up.status, 0, String(up.output.suffix(3000)))

        let names = try podman.output([
            "ps", "--filter", "label=io.podman.compose.project=\(project)", "--format", "{{.Names}}",
        ]).split(separator: "\n").map(String.init).sorted()
        let workers = names.filter { $0.contains("worker") }
        XCTAssertEqual(workers.count, 2, "\(names)")
        XCTAssertEqual(names.filter { $0.contains("frontend") }.count, 1, "\(names)")
        for w in workers {
            let connected = eventually(timeout: 60, interval: 0.2) { podman.logs(w).contains("connected to") }
            XCTAssertTrue(connected, podman.tail(w))
        }
        let live = eventually(timeout: 60, interval: 0.2) {
            (try? HTTPClient.request("GET", port: httpPort, path: "/health").status) == 200
        }
        guard live else {
            return XCTFail("frontend not healthy: \(names.filter { $0.contains("frontend") }.map(podman.tail))")
        }
        var ids: [String] = []
        for i in 0..<40 {
            let sent = try HTTPClient.request(
                "POST", port: httpPort, path: "/tasks", body: #"{"task": "add", "args": [\#(i), 1]}"#)
            ids.append(try XCTUnwrap(sent.json?["task_id"]?.stringValue, sent.text))
        }
        for (i, id) in ids.enumerated() {
            var last = ""
            let done = eventually(timeout: 30, interval: 0.05) {
                last = (try? HTTPClient.request("GET", port: httpPort, path: "/status/\(id)").text) ?? ""
                return last.contains("SUCCESS")
            }
            XCTAssertTrue(done, last)
            XCTAssertTrue(last.contains("\"result\": \(i + 1)"), last)
        }
    }
}

/// podman on this machine: runc (crun fails under hybrid cgroups here) and a CONTAINERS_CONF
/// without default ulimits (deploy/container/containers.conf); see ../shared/notes/containers.md.
struct Podman {
    let path: String
    let runtime: String
    let conf = TestPaths.repoRoot.appendingPathComponent("deploy/container/containers.conf").path

    struct Build {
        let sizeBytes: Int
        let baseSizeBytes: Int
        /// The directory of the binaries in the image.
        let binaries: String
        let seconds: Double
    }

    static func which(_ name: String) -> String? {
        for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"] {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    static func find() throws -> Podman {
        guard let path = which("podman") else {
            throw XCTSkip("podman not installed (apt-get install podman runc debootstrap): container tests skipped")
        }
        guard let runtime = which("runc") ?? which("crun") else { throw XCTSkip("no OCI runtime (runc) installed") }
        let podman = Podman(path: path, runtime: runtime)
        let info = try podman.run(["info", "--format", "{{.Host.OCIRuntime.Name}}"], timeout: 60)
        guard info.status == 0 else { throw XCTSkip("podman cannot run here: \(info.output)") }
        return podman
    }

    /// Run `podman ARGS` (with the runtime and conf); output is stdout and stderr together.
    func run(_ args: [String], timeout: Double = 120) throws -> (status: Int32, output: String) {
        try exec(path, ["--runtime", runtime] + args, env: [:], timeout: timeout)
    }

    func exec(_ executable: String, _ args: [String], env: [String: String], timeout: Double) throws -> (
        status: Int32, output: String
    ) {
        // Through bash closing every inherited descriptor above 2: Foundation's Process learns
        // that a child ended when a socket the child inherits closes, and `podman run -d` leaves
        // conmon (holding it) behind, so the podman process would look alive for the container's life.
        let closeAndExec =
            #"for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null; done; exec "$@""#
        let p = try Spawned(
            "/bin/bash", ["-c", closeAndExec, "podman-exec", executable] + args,
            env: env.merging(["CONTAINERS_CONF": conf]) { $1 }, name: "podman")
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning {
            p.stop()
            throw TestFailure("\(executable) \(args.joined(separator: " ")) took over \(Int(timeout)) s: \(p.log)")
        }
        return (p.process.terminationStatus, p.log)
    }

    @discardableResult
    func check(_ args: [String], timeout: Double = 120) throws -> String {
        let r = try run(args, timeout: timeout)
        guard r.status == 0 else { throw TestFailure("podman \(args.joined(separator: " ")): \(r.output)") }
        return r.output
    }

    func output(_ args: [String]) throws -> String {
        try check(args).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func logs(_ container: String) -> String { (try? run(["logs", container], timeout: 30).output) ?? "" }

    /// The end of a container's log, for failure messages.
    func tail(_ container: String) -> String { "[\(container)] …" + String(logs(container).suffix(3000)) }

    func imageExists(_ name: String) -> Bool { (try? run(["image", "exists", name], timeout: 30).status) == 0 }

    /// The Debian bookworm base: `CELERIS_CONTAINER_BASE`, or `localhost/bookworm-base` (imported
    /// from a debootstrap minbase tree cached under /var/tmp, made once).
    func baseImage() throws -> String {
        if let base = ProcessInfo.processInfo.environment["CELERIS_CONTAINER_BASE"] { return base }
        let base = "localhost/bookworm-base:latest"
        if imageExists(base) { return base }
        guard let debootstrap = Podman.which("debootstrap") else {
            throw XCTSkip("no base image \(base) and no debootstrap to make one (public images cannot be pulled here)")
        }
        guard getuid() == 0 else { throw XCTSkip("debootstrap needs root to make the base image \(base)") }
        let rootfs = "/var/tmp/celeris-bookworm-rootfs"
        if !FileManager.default.fileExists(atPath: rootfs + "/etc/debian_version") {
            try? FileManager.default.removeItem(atPath: rootfs)
            let r = try exec(
                debootstrap, ["--variant=minbase", "bookworm", rootfs, "http://deb.debian.org/debian"], env: [:],
                timeout: 600)
            guard r.status == 0 else { throw XCTSkip("debootstrap could not make the base: \(r.output.suffix(2000))") }
            // As debian:bookworm-slim: no package caches, lists, docs or man pages.
            let r2 = try exec(
                "/bin/sh",
                [
                    "-c",
                    "cd \(rootfs) && rm -rf var/cache/apt/archives/*.deb var/cache/apt/*.bin var/lib/apt/lists/* usr/share/doc/* usr/share/man/* usr/share/info/*",
                ], env: [:], timeout: 60)
            guard r2.status == 0 else { throw TestFailure(r2.output) }
        }
        let r = try exec(
            "/bin/sh", ["-c", "tar -C \(rootfs) -c . | '\(path)' --runtime '\(runtime)' import - \(base)"], env: [:],
            timeout: 300)
        guard r.status == 0 else { throw TestFailure("import of the base failed: \(r.output)") }
        return base
    }

    /// The image from release binaries (Dockerfile `--target runtime`), and a Redis image on the same base.
    func buildImage(tag: String, redisTag: String) throws -> Build {
        let env = ProcessInfo.processInfo.environment
        // Release binaries when built (the image users get); else the debug build the test run
        // itself made (CI): the same libraries and behaviour, a larger image.
        let built = ["release", "debug"].map { TestPaths.repoRoot.appendingPathComponent(".build/\($0)").path }
        let candidates = env["CELERIS_RELEASE_BIN_DIR"].map { [$0] } ?? built
        guard
            let bin = candidates.first(where: {
                FileManager.default.isExecutableFile(atPath: $0 + "/celeris-worker")
                    && FileManager.default.isExecutableFile(atPath: $0 + "/celeris-frontend")
                    && FileManager.default.isExecutableFile(atPath: $0 + "/celeris-beat")
            })
        else {
            throw XCTSkip(
                "no binaries in \(candidates): run `swift build -c release` (or set CELERIS_RELEASE_BIN_DIR) for the container tests"
            )
        }
        print("container image from the binaries in \(bin)")
        let base = try baseImage()
        let context = "/var/tmp/celeris-container-context"
        let root = TestPaths.repoRoot.path
        let staged = try exec(
            root + "/deploy/container/stage-prebuilt.sh", [bin, context], env: [:], timeout: 300)
        guard staged.status == 0 else { throw TestFailure("stage-prebuilt.sh: \(staged.output)") }
        let start = Date()
        try check(
            [
                "build", "--format", "docker", "--network", "host", "--target", "runtime", "--build-arg",
                "BASE=\(base)",
                "--build-arg", "PREBUILT=prebuilt", "-f", root + "/Dockerfile", "-t", tag, context,
            ], timeout: 900)
        let seconds = Date().timeIntervalSince(start)
        if !imageExists(redisTag) {
            let dir = context + "-redis"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try """
            FROM \(base)
            RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
             && rm -rf /var/lib/apt/lists/*
            USER redis
            """.write(toFile: dir + "/Dockerfile", atomically: true, encoding: .utf8)
            try check(["build", "--network", "host", "-t", redisTag, dir], timeout: 900)
        }
        func size(_ image: String) throws -> Int {
            guard let n = Int(try output(["image", "inspect", "--format", "{{.Size}}", image])) else {
                throw TestFailure("no size for \(image)")
            }
            return n
        }
        return Build(sizeBytes: try size(tag), baseSizeBytes: try size(base), binaries: bin, seconds: seconds)
    }
}
