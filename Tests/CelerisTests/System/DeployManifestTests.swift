import FastCore
import Foundation
import XCTest

/// deploy/kubernetes: valid against the Kubernetes API schemas (kubernetes-validate) and KEDA's
/// ScaledObject schema, consistent with itself (every ScaledObject scales an existing worker
/// Deployment on its own queue's lists, Secrets and ConfigMaps it names exist and agree), and
/// with the binaries it runs (flags, ports, probe paths, termination grace), the last checked by
/// running the built `celeris-frontend` / `celeris-worker` with the manifests' own arguments.
final class DeployManifestTests: XCTestCase {
    static let manifestDir = TestPaths.repoRoot.appendingPathComponent("deploy/kubernetes")

    // MARK: - schemas

    func testEveryManifestIsValidAgainstKubernetesAndKEDASchemas() throws {
        let report = try DeployManifests.validate(directory: Self.manifestDir)
        XCTAssertEqual(report.status, 0, report.errors.joined(separator: "\n"))
        XCTAssertEqual(report.errors, [])
        let kinds = Dictionary(grouping: report.manifests.resources, by: \.kind).mapValues(\.count)
        XCTAssertEqual(kinds["Deployment"], 5, "frontend + celery, fetch, extract, compare workers")
        XCTAssertEqual(kinds["ScaledObject"], 4)
        XCTAssertEqual(kinds["HorizontalPodAutoscaler"], 1)
        XCTAssertEqual(kinds["Service"], 1)
        XCTAssertEqual(kinds["ConfigMap"], 1)
        XCTAssertEqual(kinds["Secret"], 1)
        XCTAssertEqual(report.versions.count, 2, "the oldest supported Kubernetes and the newest known")
    }

    /// The validator is not a rubber stamp: a wrong type, an unknown field, a KEDA trigger with a
    /// number where KEDA wants a string and a manifest kustomize would not apply are each
    /// reported, by file and path.
    func testValidatorRejectsBrokenManifests() throws {
        let copy = try DeployManifests.copy(Self.manifestDir)
        defer { try? FileManager.default.removeItem(at: copy) }
        try DeployManifests.edit(copy.appendingPathComponent("frontend.yaml")) {
            $0.replacingOccurrences(of: "containerPort: 8000", with: "containerPort: \"8000\"")
        }
        try DeployManifests.edit(copy.appendingPathComponent("worker-fetch.yaml")) {
            $0.replacingOccurrences(of: "initialDelaySeconds: 5", with: "initialDelaySecond: 5")
        }
        try DeployManifests.edit(copy.appendingPathComponent("worker-extract.yaml")) {
            $0.replacingOccurrences(of: "listLength: \"16\"", with: "listLength: 16")
                .replacingOccurrences(of: "pollingInterval: 5", with: "pollingIntervall: 5")
        }
        try FileManager.default.copyItem(
            at: copy.appendingPathComponent("worker-fetch.yaml"), to: copy.appendingPathComponent("worker-extra.yaml"))
        let report = try DeployManifests.validate(directory: copy)
        XCTAssertEqual(report.status, 1)
        XCTAssertTrue(
            report.errors.contains(
                "worker-extra.yaml: not listed in kustomization.yaml's resources (never applied, never checked)"),
            "\(report.errors)")
        let text = report.errors.joined(separator: "\n")
        XCTAssertTrue(text.contains("frontend.yaml[0] Deployment/celeris-frontend"), text)
        XCTAssertTrue(text.contains("containerPort: '8000' is not of type 'integer'"), text)
        XCTAssertTrue(text.contains("worker-fetch.yaml[0] Deployment/celeris-worker-fetch"), text)
        XCTAssertTrue(text.contains("initialDelaySecond"), text)
        XCTAssertTrue(text.contains("spec.triggers.0.metadata.listLength: 16 is not of type 'string'"), text)
        XCTAssertTrue(text.contains("pollingIntervall"), text)
    }

    // MARK: - consistency

    func testManifestsAgreeWithEachOtherAndWithTheBinaries() throws {
        let manifests = try DeployManifests.validate(directory: Self.manifestDir).manifests
        let problems = try manifests.problems(
            frontend: try CommandHelp.of("celeris-frontend"),
            worker: try CommandHelp.of("celeris-worker"))
        XCTAssertEqual(problems, [], problems.joined(separator: "\n"))
        // What the consistency rules rest on, stated once here.
        let queues = manifests.workerDeployments.compactMap { manifests.queue(of: $0) }
        XCTAssertEqual(Set(queues), ["celery", "fetch_queue", "extract_queue", "compare_queue"])
    }

    /// Each rule fires on the drift it is there for.
    func testConsistencyChecksCatchDrift() throws {
        let original = try DeployManifests.validate(directory: Self.manifestDir).manifests
        let (frontend, worker) = (try CommandHelp.of("celeris-frontend"), try CommandHelp.of("celeris-worker"))
        XCTAssertEqual(try original.problems(frontend: frontend, worker: worker), [])
        // Each drift: a file of a fresh copy changed; every copy read in one run of the validator
        // (--parse-only: the schemas are testEveryManifestIsValid's and testValidatorRejects's part).
        let drifts: [(file: String, change: (String) -> String)] = [
            ("worker-compare.yaml", { $0.replacingOccurrences(of: "\"compare_queue\"\n", with: "\"compare\"\n") }),
            (
                "worker-fetch.yaml",
                {
                    $0.replacingOccurrences(
                        of: "  scaleTargetRef:\n    name: celeris-worker-fetch",
                        with: "  scaleTargetRef:\n    name: celeris-worker-fetcher")
                }
            ),
            (
                "worker-compare.yaml",
                {
                    $0.replacingOccurrences(
                        of: "terminationGracePeriodSeconds: 690", with: "terminationGracePeriodSeconds: 300")
                }
            ),
            // create_task's bound comes from the frontend's --max-task-length.
            (
                "frontend.yaml",
                {
                    $0.replacingOccurrences(
                        of: "\"--loglevel\", \"info\"]",
                        with: "\"--loglevel\", \"info\", \"--max-task-length\", \"2000\"]")
                }
            ),
            (
                "frontend.yaml",
                {
                    $0.replacingOccurrences(of: "prometheus.io/port: \"8000\"", with: "prometheus.io/port: \"9000\"")
                        .replacingOccurrences(of: "\"--loops\", \"2\"", with: "\"--loop\", \"2\"")
                }
            ),
            (
                "frontend.yaml",
                {
                    $0.replacingOccurrences(
                        of: "\"--loglevel\", \"info\"]",
                        with: "\"--loglevel\", \"info\", \"--allowed-host\", \"api.example.com\"]")
                }
            ),
            (
                "config.yaml",
                {
                    $0.replacingOccurrences(of: "REDIS_ADDRESS: \"redis:6379\"", with: "REDIS_ADDRESS: \"redis:6380\"")
                }
            ),
            (
                "worker-extract.yaml",
                {
                    $0.replacingOccurrences(of: "databaseIndex: \"0\"", with: "databaseIndex: \"1\"")
                        .replacingOccurrences(of: "runAsNonRoot: true", with: "runAsNonRoot: false")
                        .replacingOccurrences(of: "claimName: celeris-documents", with: "claimName: documents")
                }
            ),
            ("frontend.yaml", { $0.replacingOccurrences(of: "port: http\n", with: "port: web\n") }),
            ("worker-celery.yaml", { $0.replacingOccurrences(of: "path: /livez\n", with: "path: /health\n") }),
        ]
        var copies: [URL] = []
        defer { for copy in copies { try? FileManager.default.removeItem(at: copy) } }
        for drift in drifts {
            let copy = try DeployManifests.copy(Self.manifestDir)
            copies.append(copy)
            try DeployManifests.edit(copy.appendingPathComponent(drift.file), drift.change)
        }
        let found = try DeployManifests.validate(directories: copies, parseOnly: true).map {
            try $0.manifests.problems(frontend: frontend, worker: worker).joined(separator: "\n")
        }
        XCTAssertEqual(found.count, drifts.count)
        guard found.count == drifts.count else { return }
        var p = found[0]
        XCTAssertTrue(p.contains("ScaledObject celeris-worker-compare: lists [compare"), p)
        p = found[1]
        XCTAssertTrue(
            p.contains("ScaledObject celeris-worker-fetch targets celeris-worker-fetcher, which is no Deployment"), p)
        XCTAssertTrue(p.contains("worker Deployment celeris-worker-fetch has no ScaledObject"), p)
        p = found[2]
        XCTAssertTrue(p.contains("celeris-worker-compare: terminationGracePeriodSeconds 300 < 690"), p)
        p = found[3]
        XCTAssertTrue(p.contains("celeris-worker-celery: terminationGracePeriodSeconds 1030 < 2030"), p)
        p = found[4]
        XCTAssertTrue(p.contains("celeris-frontend: prometheus.io/port 9000, but it serves /metrics on 8000"), p)
        XCTAssertTrue(p.contains("celeris-frontend: celeris-frontend has no option --loop"), p)
        p = found[5]
        XCTAssertTrue(p.contains("celeris-frontend: --allowed-host refuses the liveness probe's Host"), p)
        p = found[6]
        XCTAssertTrue(p.contains("address redis:6380 (REDIS_ADDRESS) is not the broker's redis:6379"), p)
        p = found[7]
        XCTAssertTrue(p.contains("databaseIndex 1 is not the broker's db 0"), p)
        XCTAssertTrue(p.contains("celeris-worker-extract: pod securityContext.runAsNonRoot is not true"), p)
        XCTAssertTrue(
            p.contains("celeris-worker-extract: volume documents claims documents, which is no PersistentVolumeClaim"),
            p)
        p = found[8]
        XCTAssertTrue(p.contains("celeris-frontend: readinessProbe port web is no container port"), p)
        p = found[9]
        XCTAssertTrue(p.contains("celeris-worker-celery: livenessProbe is not GET /livez"), p)
    }

    // MARK: - the binaries as deployed

    /// celeris-frontend with the Deployment's arguments and environment (the broker pointed at
    /// a real Redis here): ready and alive; with Redis gone, not ready but still alive (so
    /// Kubernetes stops routing to it and does not restart it); SIGTERM ends it well inside the
    /// grace period left after the preStop sleep.
    func testFrontendProbesAndShutdownAsDeployed() throws {
        let manifests = try DeployManifests.validate(directory: Self.manifestDir).manifests
        let deployment = try XCTUnwrap(manifests.resource("Deployment", "celeris-frontend"))
        let container = try XCTUnwrap(DeployManifests.container(of: deployment))
        let readiness = try XCTUnwrap(container["readinessProbe"]?["httpGet"]?["path"]?.stringValue)
        let liveness = try XCTUnwrap(container["livenessProbe"]?["httpGet"]?["path"]?.stringValue)
        let scrape = try XCTUnwrap(
            deployment["spec"]?["template"]?["metadata"]?["annotations"]?["prometheus.io/path"]?.stringValue)
        let redis = try RedisServer()
        let port = freePort()
        let args = DeployManifests.replacing(
            DeployManifests.strings(container["args"]), ["--host": "127.0.0.1", "--port": "\(port)"])
        var env = try manifests.environment(of: container)
        env["CELERIS_BROKER_URL"] = redis.url
        let frontend = try Spawned(try TestPaths.executable("celeris-frontend"), args, env: env, name: "k8s-frontend")
        func status(_ path: String) -> Int? { try? HTTPClient.request("GET", port: port, path: path).status }
        XCTAssertTrue(eventually(timeout: 10) { status(readiness) == 200 }, frontend.log)
        XCTAssertEqual(status(liveness), 200)
        let metrics = try HTTPClient.request("GET", port: port, path: scrape)
        XCTAssertEqual(metrics.status, 200)
        XCTAssertTrue(metrics.text.contains("# TYPE celeris_http_requests_total counter"), metrics.text)

        redis.stop()
        XCTAssertTrue(eventually(timeout: 10) { status(readiness) == 503 }, frontend.log)
        XCTAssertEqual(status(liveness), 200, "liveness must not follow Redis")

        let grace = try XCTUnwrap(deployment["spec"]?["template"]?["spec"]?["terminationGracePeriodSeconds"]?.intValue)
        let preStop = container["lifecycle"]?["preStop"]?["sleep"]?["seconds"]?.intValue ?? 0
        let start = Date()
        frontend.process.terminate()
        XCTAssertTrue(eventually(timeout: Double(grace - preStop)) { !frontend.isRunning }, frontend.log)
        XCTAssertLessThan(Date().timeIntervalSince(start), Double(grace - preStop))
        XCTAssertEqual(frontend.process.terminationStatus, 0, frontend.log)
    }

    /// Every worker Deployment's arguments and environment run the built celeris-worker: it
    /// consumes the queue its ScaledObject watches, answers its liveness probe on the annotated
    /// metrics port, and on SIGTERM (warm shutdown) finishes the task it runs, then exits 0.
    func testWorkersRunAsDeployedAndShutDownWarm() throws {
        let manifests = try DeployManifests.validate(directory: Self.manifestDir).manifests
        let redis = try RedisServer()
        let client = try redis.client()
        let documents = FileManager.default.temporaryDirectory.appendingPathComponent("k8s-docs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: documents, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: documents) }
        XCTAssertEqual(manifests.workerDeployments.count, 4)
        for deployment in manifests.workerDeployments {
            let name = deployment["metadata"]?["name"]?.stringValue ?? "?"
            let container = try XCTUnwrap(DeployManifests.container(of: deployment))
            let queue = try XCTUnwrap(manifests.queue(of: deployment))
            let probe = try XCTUnwrap(container["livenessProbe"]?["httpGet"]?["path"]?.stringValue)
            let readiness = try XCTUnwrap(container["readinessProbe"]?["httpGet"]?["path"]?.stringValue)
            let metricsPort = freePort()
            let args = DeployManifests.replacing(
                DeployManifests.strings(container["args"]),
                ["--metrics-port": "\(metricsPort)", "--metrics-host": "127.0.0.1", "--documents-root": documents.path])
            var env = try manifests.environment(of: container)
            env["CELERIS_BROKER_URL"] = redis.url
            env["CELERIS_STEP_SECONDS"] = "0.5"
            let worker = try Spawned(try TestPaths.executable("celeris-worker"), args, env: env, name: "k8s-\(name)")
            XCTAssertTrue(eventually(timeout: 10) { worker.log.contains("queues \(queue),") }, worker.log)
            XCTAssertTrue(
                eventually(timeout: 10) {
                    (try? HTTPClient.request("GET", port: metricsPort, path: probe).status) == 200
                        && (try? HTTPClient.request("GET", port: metricsPort, path: readiness).status) == 200
                }, "\(name): \(worker.log)")
            // A 4-step create_task (2 s here) on the worker's own queue, seen running (PROGRESS)
            // right before SIGTERM, and ended (date_done) after it.
            var producer = TaskProducer()
            let task = TaskMessage(task: "create_task", args: [4], queue: queue)
            _ = try client.pipeline(producer.sendCommands(for: task))
            XCTAssertTrue(
                try eventually(timeout: 10) { try client.result(task.id)?["status"] != nil }, "\(name): \(worker.log)")
            XCTAssertEqual(try client.result(task.id)?["status"], "PROGRESS", "\(name): running when SIGTERM comes")
            let terminatedAt = CeleryTime.now()
            worker.process.terminate()
            // Not ready from the warm shutdown on, while the task finishes; still alive.
            XCTAssertTrue(
                eventually(timeout: 5) {
                    (try? HTTPClient.request("GET", port: metricsPort, path: readiness).status) == 503
                }, "\(name): \(worker.log)")
            XCTAssertEqual(try HTTPClient.request("GET", port: metricsPort, path: probe).status, 200, name)
            let grace = try XCTUnwrap(
                deployment["spec"]?["template"]?["spec"]?["terminationGracePeriodSeconds"]?.intValue)
            XCTAssertTrue(eventually(timeout: min(Double(grace), 30)) { !worker.isRunning }, "\(name): \(worker.log)")
            XCTAssertEqual(worker.process.terminationStatus, 0, "\(name): \(worker.log)")
            let stored = try XCTUnwrap(try client.result(task.id), name)
            XCTAssertEqual(stored["status"], "SUCCESS", "\(name): warm shutdown finishes the running task")
            let done = try XCTUnwrap(stored["date_done"]?.stringValue.flatMap(CeleryTime.parse), "\(name): \(stored)")
            XCTAssertGreaterThan(done, terminatedAt, "\(name): the task was still running at SIGTERM")
            XCTAssertEqual(try client.command("HLEN", "unacked").integer, 0, name)
        }
    }
}

// MARK: - reading the manifests

/// The manifests as `deploy/validate_manifests.py` read and validated them.
struct DeployManifests {
    struct Resource {
        let file: String
        let kind: String
        let name: String
        let document: JSON
        subscript(key: String) -> JSON? { document[key] }
    }

    struct Report {
        let status: Int32
        let errors: [String]
        let versions: [String]
        let manifests: DeployManifests
    }

    let resources: [Resource]

    /// Run the validator on `directory` (a copy of deploy/kubernetes, or the real one).
    static func validate(directory: URL) throws -> Report {
        let reports = try validate(directories: [directory])
        guard reports.count == 1 else { throw TestFailure("validate_manifests.py: \(reports.count) reports for one") }
        return reports[0]
    }

    /// Run the validator once on several directories (one start-up); a report for each, in order.
    /// `parseOnly`: the resources read, no schema checked (for consistency checks on edited copies).
    static func validate(directories: [URL], parseOnly: Bool = false) throws -> [Report] {
        let script = TestPaths.repoRoot.appendingPathComponent("deploy/validate_manifests.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try TestPaths.python())
        process.arguments = [script] + (parseOnly ? ["--parse-only"] : []) + directories.map(\.path)
        // stdout is read to its end while the script runs; stderr goes to a file (two pipes read
        // one after the other deadlock once the unread one fills).
        let out = Pipe()
        let errURL = TestLogs.shared.directory.appendingPathComponent("validate-\(UUID().uuidString).err")
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errURL) }
        let errHandle = try FileHandle(forWritingTo: errURL)
        defer { try? errHandle.close() }
        process.standardOutput = out
        process.standardError = errHandle
        process.standardInput = FileHandle.nullDevice
        try withSignalsUnblocked { try process.run() }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let errors = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        let lines = data.split(separator: UInt8(ascii: "\n"))
        let parsed = lines.compactMap { try? JSONParser.parse([UInt8]($0)) }
        guard process.terminationStatus != 2, parsed.count == lines.count, parsed.count == directories.count else {
            throw TestFailure(
                "validate_manifests.py exited \(process.terminationStatus): \(String(decoding: data, as: UTF8.self)) \(errors)"
            )
        }
        return parsed.map { report in
            let resources = (report["resources"]?.arrayValue ?? []).map {
                Resource(
                    file: $0["file"]?.stringValue ?? "", kind: $0["kind"]?.stringValue ?? "",
                    name: $0["name"]?.stringValue ?? "",
                    document: $0["document"] ?? .null)
            }
            return Report(
                status: report["ok"] == true ? 0 : 1,
                errors: (report["errors"]?.arrayValue ?? []).compactMap(\.stringValue),
                versions: (report["versions"]?.arrayValue ?? []).compactMap(\.stringValue),
                manifests: DeployManifests(resources: resources))
        }
    }

    static func copy(_ directory: URL) throws -> URL {
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("k8s-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: directory, to: copy)
        return copy
    }

    /// Rewrite a file; fails when the change changes nothing (a stale test edit).
    static func edit(_ file: URL, _ change: (String) -> String) throws {
        let text = try String(contentsOf: file, encoding: .utf8)
        let changed = change(text)
        guard changed != text else { throw TestFailure("edit of \(file.lastPathComponent) changed nothing") }
        try changed.write(to: file, atomically: true, encoding: .utf8)
    }

    static func strings(_ json: JSON?) -> [String] { (json?.arrayValue ?? []).compactMap(\.stringValue) }

    static func container(of deployment: Resource) -> JSON? {
        deployment["spec"]?["template"]?["spec"]?["containers"]?[0]
    }

    /// The value of option `names` in `args` (`--port 8000` or `--port=8000`).
    static func option(_ args: [String], _ names: Set<String>) -> String? {
        for (i, arg) in args.enumerated() {
            if names.contains(arg), i + 1 < args.count { return args[i + 1] }
            if let eq = arg.firstIndex(of: "="), names.contains(String(arg[..<eq])) {
                return String(arg[arg.index(after: eq)...])
            }
        }
        return nil
    }

    /// `args` with the values of the given options replaced (added when absent).
    static func replacing(_ args: [String], _ values: [String: String]) -> [String] {
        var out = args
        for (name, value) in values.sorted(by: { $0.key < $1.key }) {
            if let i = out.firstIndex(of: name), i + 1 < out.count {
                out[i + 1] = value
            } else if out.contains(where: { $0.hasPrefix(name + "=") }) {
                out = out.map { $0.hasPrefix(name + "=") ? "\(name)=\(value)" : $0 }
            } else if name != "--documents-root" && name != "--metrics-host" {
                out += [name, value]
            }
        }
        return out
    }

    func resource(_ kind: String, _ name: String) -> Resource? {
        resources.first { $0.kind == kind && $0.name == name }
    }

    func all(_ kind: String) -> [Resource] { resources.filter { $0.kind == kind } }

    /// Deployments whose container runs celeris-worker.
    var workerDeployments: [Resource] {
        all("Deployment").filter { Self.strings(Self.container(of: $0)?["command"]).first == "celeris-worker" }
    }

    /// The single queue a worker Deployment consumes (`-Q`), nil when it names none or several.
    func queue(of deployment: Resource) -> String? {
        let args = Self.strings(Self.container(of: deployment)?["args"])
        let value = Self.option(args, ["-Q", "--queues"]) ?? "celery"
        let queues = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        return queues.count == 1 ? queues[0] : nil
    }

    /// The value `key` of ConfigMap or Secret `name` (Secrets here use `stringData`).
    func value(_ kind: String, _ name: String, _ key: String) -> String? {
        guard let r = resource(kind, name) else { return nil }
        return r["stringData"]?[key]?.stringValue
            ?? r["data"]?[key]?.stringValue.flatMap {
                Data(base64Encoded: $0).map { String(decoding: $0, as: UTF8.self) }
            }
    }

    /// The container's environment as Kubernetes would set it from these manifests.
    func environment(of container: JSON) throws -> [String: String] {
        var env: [String: String] = [:]
        for source in container["envFrom"]?.arrayValue ?? [] {
            if let name = source["configMapRef"]?["name"]?.stringValue {
                for (k, v) in resource("ConfigMap", name)?["data"]?.objectPairs ?? [] { env[k] = v.stringValue }
            }
        }
        for variable in container["env"]?.arrayValue ?? [] {
            guard let name = variable["name"]?.stringValue else { continue }
            if let v = variable["value"]?.stringValue {
                env[name] = v
            } else if let ref = variable["valueFrom"]?["secretKeyRef"],
                let s = value("Secret", ref["name"]?.stringValue ?? "", ref["key"]?.stringValue ?? "")
            {
                env[name] = s
            } else if let ref = variable["valueFrom"]?["configMapKeyRef"],
                let s = value("ConfigMap", ref["name"]?.stringValue ?? "", ref["key"]?.stringValue ?? "")
            {
                env[name] = s
            }
        }
        return env
    }

    // MARK: - the rules

    /// Everything that disagrees, one line each; empty when the manifests hang together.
    func problems(frontend: CommandHelp, worker: CommandHelp) throws -> [String] {
        var problems: [String] = []
        let deployments = all("Deployment")
        let scaled = all("ScaledObject")
        for d in deployments {
            let name = d.name
            let pod = d["spec"]?["template"]?["spec"]
            guard let container = Self.container(of: d) else {
                problems.append("\(name): no container")
                continue
            }
            // Selector, security, resources.
            let labels = d["spec"]?["template"]?["metadata"]?["labels"]
            for (k, v) in d["spec"]?["selector"]?["matchLabels"]?.objectPairs ?? [] where labels?[k] != v {
                problems.append("\(name): selector \(k) does not match the pod template's labels")
            }
            if pod?["securityContext"]?["runAsNonRoot"] != true {
                problems.append("\(name): pod securityContext.runAsNonRoot is not true")
            }
            let security = container["securityContext"]
            if security?["allowPrivilegeEscalation"] != false || security?["readOnlyRootFilesystem"] != true
                || !(security?["capabilities"]?["drop"]?.arrayValue ?? []).contains("ALL")
            {
                problems.append(
                    "\(name): container securityContext must drop ALL, no privilege escalation, read-only root")
            }
            for path in [["requests", "cpu"], ["requests", "memory"], ["limits", "memory"]]
            where container["resources"]?[path[0]]?[path[1]] == nil {
                problems.append("\(name): no resources.\(path[0]).\(path[1])")
            }
            // Flags: every option the manifest passes exists in the binary it runs.
            let command = Self.strings(container["command"]).first ?? ""
            let help: CommandHelp
            switch command {
            case "celeris-frontend": help = frontend
            case "celeris-worker": help = worker
            default:
                problems.append("\(name): runs \(command), not celeris-frontend or celeris-worker")
                continue
            }
            let args = Self.strings(container["args"])
            for arg in args where arg.hasPrefix("-") {
                let flag = arg.split(separator: "=", maxSplits: 1).first.map(String.init) ?? arg
                if !help.options.contains(flag) { problems.append("\(name): \(command) has no option \(flag)") }
            }
            // Ports: named container ports, probes and Prometheus annotations agree with the flags.
            var ports: [String: Int64] = [:]
            for p in container["ports"]?.arrayValue ?? [] {
                if let n = p["name"]?.stringValue, let v = p["containerPort"]?.intValue { ports[n] = v }
            }
            let served: Int64?
            if command == "celeris-frontend" {
                served =
                    Self.option(args, ["--port"]).flatMap { Int64($0) } ?? help.defaults["--port"].flatMap { Int64($0) }
                if ports["http"] != served {
                    problems.append("\(name): container port http is not --port \(served ?? -1)")
                }
                if container["readinessProbe"]?["httpGet"]?["path"] != "/health" {
                    problems.append("\(name): readinessProbe is not GET /health")
                }
                // Every route but /health checks Host: a probe on another path needs an allowed one.
                let liveness = container["livenessProbe"]?["httpGet"]
                let hostHeader = (liveness?["httpHeaders"]?.arrayValue ?? []).contains {
                    $0["name"]?.stringValue?.lowercased() == "host"
                }
                if Self.option(args, ["--allowed-host"]) != nil, liveness?["path"] != "/health", !hostHeader {
                    problems.append("\(name): --allowed-host refuses the liveness probe's Host (set httpHeaders Host)")
                }
            } else {
                served = Self.option(args, ["--metrics-port"]).flatMap { Int64($0) }
                if served == nil { problems.append("\(name): no --metrics-port (no liveness endpoint, no metrics)") }
                if ports["metrics"] != served {
                    problems.append("\(name): container port metrics is not --metrics-port")
                }
                if container["readinessProbe"]?["httpGet"]?["path"] != "/health" {
                    problems.append("\(name): readinessProbe is not GET /health")
                }
                // /health follows Redis: as liveness it would restart every worker during an outage.
                if container["livenessProbe"]?["httpGet"]?["path"] != "/livez" {
                    problems.append("\(name): livenessProbe is not GET /livez (the one that does not follow Redis)")
                }
            }
            for probe in ["readinessProbe", "livenessProbe"] {
                guard let get = container[probe]?["httpGet"] else {
                    if probe == "livenessProbe" || command == "celeris-frontend" {
                        problems.append("\(name): no \(probe)")
                    }
                    continue
                }
                let port = get["port"]?.stringValue.flatMap { ports[$0] } ?? get["port"]?.intValue
                if port == nil {
                    problems.append("\(name): \(probe) port \(get["port"]?.stringValue ?? "?") is no container port")
                }
            }
            let annotations = d["spec"]?["template"]?["metadata"]?["annotations"]
            if annotations?["prometheus.io/scrape"] != "true" || annotations?["prometheus.io/path"] != "/metrics" {
                problems.append("\(name): no prometheus.io/scrape \"true\" and prometheus.io/path /metrics")
            }
            if let annotated = annotations?["prometheus.io/port"]?.stringValue, Int64(annotated) != served {
                problems.append("\(name): prometheus.io/port \(annotated), but it serves /metrics on \(served ?? -1)")
            }
            // References to ConfigMaps, Secrets and claims.
            for variable in container["env"]?.arrayValue ?? [] {
                for (kind, field) in [("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")] {
                    guard let ref = variable["valueFrom"]?[field], ref["optional"] != true else { continue }
                    let (n, k) = (ref["name"]?.stringValue ?? "", ref["key"]?.stringValue ?? "")
                    if value(kind, n, k) == nil { problems.append("\(name): \(kind) \(n) has no key \(k)") }
                }
            }
            for source in container["envFrom"]?.arrayValue ?? [] {
                if let n = source["configMapRef"]?["name"]?.stringValue, resource("ConfigMap", n) == nil {
                    problems.append("\(name): envFrom ConfigMap \(n) does not exist")
                }
            }
            for volume in pod?["volumes"]?.arrayValue ?? [] {
                if let claim = volume["persistentVolumeClaim"]?["claimName"]?.stringValue,
                    resource("PersistentVolumeClaim", claim) == nil
                {
                    problems.append(
                        "\(name): volume \(volume["name"]?.stringValue ?? "?") claims \(claim), which is no PersistentVolumeClaim"
                    )
                }
            }
            // Termination grace: long enough for the graceful shutdown the binary does.
            let grace = pod?["terminationGracePeriodSeconds"]?.intValue ?? 30
            let needed: Int64
            if command == "celeris-frontend" {
                let preStop = container["lifecycle"]?["preStop"]?["sleep"]?["seconds"]?.intValue ?? 0
                if preStop < 1 { problems.append("\(name): no preStop sleep (new connections would be refused)") }
                needed = preStop + Int64(FrontendApp.Settings().shutdownLimitMs / 1000) + 1
            } else if let queue = queue(of: d) {
                let frontendArgs =
                    all("Deployment").first {
                        Self.strings(Self.container(of: $0)?["command"]).first == "celeris-frontend"
                    }.map { Self.strings(Self.container(of: $0)?["args"]) } ?? []
                let (bound, unbounded) = try Self.longestRun(
                    queue: queue, frontend: frontend, frontendArgs: frontendArgs, worker: worker, args: args)
                problems += unbounded.map {
                    "\(name): task \($0) on \(queue) has no time limit: bound it or account for it"
                }
                needed = Int64(bound.rounded(.up)) + Self.shutdownMargin
            } else {
                problems.append("\(name): consumes no single queue (-Q)")
                needed = 0
            }
            if grace < needed { problems.append("\(name): terminationGracePeriodSeconds \(grace) < \(needed)") }
        }

        // Services and the HPA.
        for service in all("Service") {
            let selector = service["spec"]?["selector"]?.objectPairs ?? []
            let targets = deployments.filter { d in
                selector.allSatisfy { d["spec"]?["template"]?["metadata"]?["labels"]?[$0.key] == $0.value }
            }
            if targets.isEmpty { problems.append("Service \(service.name) selects no Deployment's pods") }
            for port in service["spec"]?["ports"]?.arrayValue ?? [] {
                guard let target = port["targetPort"]?.stringValue else { continue }
                for d in targets
                where !(Self.container(of: d)?["ports"]?.arrayValue ?? []).contains(where: {
                    $0["name"]?.stringValue == target
                }) {
                    problems.append("Service \(service.name): targetPort \(target) is no port of \(d.name)")
                }
            }
        }
        for hpa in all("HorizontalPodAutoscaler") {
            let target = hpa["spec"]?["scaleTargetRef"]?["name"]?.stringValue ?? ""
            if resource("Deployment", target) == nil {
                problems.append("HPA \(hpa.name) targets \(target), which is no Deployment")
            }
            if scaled.contains(where: { $0["spec"]?["scaleTargetRef"]?["name"]?.stringValue == target }) {
                problems.append("HPA \(hpa.name) and a ScaledObject both scale \(target)")
            }
        }

        // ScaledObjects: one per worker Deployment, on that worker's queue, with the broker's address.
        for d in workerDeployments {
            let count = scaled.filter { $0["spec"]?["scaleTargetRef"]?["name"]?.stringValue == d.name }.count
            if count == 0 { problems.append("worker Deployment \(d.name) has no ScaledObject") }
            if count > 1 { problems.append("worker Deployment \(d.name) has \(count) ScaledObjects") }
            if d["spec"]?["replicas"] != nil {
                problems.append("\(d.name): sets replicas, which its ScaledObject owns")
            }
        }
        for so in scaled {
            let ref = so["spec"]?["scaleTargetRef"]
            let targetName = ref?["name"]?.stringValue ?? ""
            if let kind = ref?["kind"]?.stringValue, kind != "Deployment" {
                problems.append("ScaledObject \(so.name) targets a \(kind)")
            }
            guard let target = workerDeployments.first(where: { $0.name == targetName }),
                let container = Self.container(of: target)
            else {
                problems.append(
                    "ScaledObject \(so.name) targets \(targetName), which is no Deployment running celeris-worker")
                continue
            }
            let triggers = so["spec"]?["triggers"]?.arrayValue ?? []
            let lists = triggers.compactMap { $0["metadata"]?["listName"]?.stringValue }
            if let queue = queue(of: target), lists != QueueKeys.listKeys(queue: queue) || triggers.count != lists.count
            {
                let shown = lists.map { $0.replacingOccurrences(of: QueueKeys.separator, with: "\\x06\\x16") }
                problems.append(
                    "ScaledObject \(so.name): lists [\(shown.joined(separator: ", "))] are not \(queue)'s priority lists"
                )
            }
            let env = try environment(of: container)
            guard let url = env["CELERIS_BROKER_URL"], let broker = try? RedisEndpoint(url: url) else {
                problems.append("ScaledObject \(so.name): \(target.name) has no valid CELERIS_BROKER_URL")
                continue
            }
            for trigger in triggers {
                let m = trigger["metadata"]
                if trigger["type"] != "redis" {
                    problems.append("ScaledObject \(so.name): a trigger is not of type redis")
                }
                let addressVar = m?["addressFromEnv"]?.stringValue
                let address = m?["address"]?.stringValue ?? addressVar.flatMap { env[$0] }
                if address != "\(broker.host):\(broker.port)" {
                    problems.append(
                        "ScaledObject \(so.name): address \(address ?? "none") (\(addressVar ?? "address")) is not the broker's \(broker.host):\(broker.port)"
                    )
                }
                if let v = m?["passwordFromEnv"]?.stringValue, env[v] != broker.password {
                    problems.append("ScaledObject \(so.name): \(v) is not the broker URL's password")
                }
                if m?["passwordFromEnv"] == nil, broker.password != nil {
                    problems.append("ScaledObject \(so.name): the broker has a password, the trigger none")
                }
                let db = m?["databaseIndex"]?.stringValue ?? "0"
                if db != String(broker.db) {
                    problems.append("ScaledObject \(so.name): databaseIndex \(db) is not the broker's db \(broker.db)")
                }
                let tls = m?["enableTLS"]?.stringValue == "true"
                if tls != url.hasPrefix("rediss://") {
                    problems.append("ScaledObject \(so.name): enableTLS \(tls) but the broker URL is \(url.prefix(9))…")
                }
            }
        }
        return problems
    }

    /// Seconds past the longest task a warm shutdown takes: returning prefetched messages and
    /// storing the last results (the manifests' comments say + 30 s).
    static let shutdownMargin: Int64 = 30

    /// Tasks that finish at once: no time limit needed.
    static let instantTasks: Set<String> = ["add", "noop", "noop_async", "tsum"]

    /// The longest a task on `queue` may run (its hard time limit; create_task's steps × step
    /// seconds), and the tasks with no known bound.
    static func longestRun(
        queue: String, frontend: CommandHelp, frontendArgs: [String], worker: CommandHelp, args: [String]
    ) throws -> (Double, [String]) {
        var registry = TaskRegistry()
        BuiltinTasks.register(into: &registry)
        DocumentTasks.register(into: &registry)
        var longest = 0.0
        var unbounded: [String] = []
        for name in registry.names where (DocumentTasks.routes.queue(for: name) ?? "celery") == queue {
            if let limit = registry.task(named: name)?.options.timeLimit {
                longest = max(longest, limit)
            } else if name == "create_task" {
                guard
                    let steps = (option(frontendArgs, ["--max-task-length"]) ?? frontend.defaults["--max-task-length"])
                        .flatMap(Double.init),
                    let step = (option(args, ["--step-seconds"]) ?? worker.defaults["--step-seconds"]).flatMap(
                        Double.init)
                else { throw TestFailure("no --max-task-length / --step-seconds default in the help") }
                longest = max(longest, steps * step)
            } else if !instantTasks.contains(name) {
                unbounded.append(name)
            }
        }
        return (longest, unbounded)
    }
}

/// A built binary's options and their defaults, read from its `--help`.
struct CommandHelp {
    let options: Set<String>
    let defaults: [String: String]

    static func of(_ executable: String) throws -> CommandHelp {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try TestPaths.executable(executable))
        process.arguments = ["--help"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try withSignalsUnblocked { try process.run() }
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return parse(text)
    }

    /// Entries start with two spaces and a dash; their text runs to the next entry.
    static func parse(_ text: String) -> CommandHelp {
        var entries: [(names: [String], text: String)] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("  -") {
                let head = line.dropFirst(2).split(separator: " ", omittingEmptySubsequences: true)
                var names: [String] = []
                for token in head {
                    let t = token.trimmingCharacters(in: CharacterSet(charactersIn: ","))
                    guard t.hasPrefix("-") else { break }
                    names.append(t)
                }
                entries.append((names, String(line)))
            } else if !entries.isEmpty, line.hasPrefix("   ") {
                entries[entries.count - 1].text += " " + line.trimmingCharacters(in: .whitespaces)
            }
        }
        var options: Set<String> = []
        var defaults: [String: String] = [:]
        for entry in entries {
            options.formUnion(entry.names)
            guard let range = entry.text.range(of: "(default: ", options: .backwards),
                let close = entry.text[range.upperBound...].firstIndex(of: ")")
            else { continue }
            var value = String(entry.text[range.upperBound..<close])
            // "$CELERIS_STEP_SECONDS or 1": the built-in value is the last word.
            if let last = value.split(separator: " ").last, value.contains(" or ") { value = String(last) }
            for name in entry.names { defaults[name] = value }
        }
        return CommandHelp(options: options, defaults: defaults)
    }
}
