import FastCore
import Foundation
import XCTest

/// A `celeris-beat` child process, ready once its scheduler id (`beat@<host>:<pid>:<hex>`, found
/// by its pid) is a member of the `celeris:beat:schedulers` zset: readiness is Redis state, not
/// log text.
///
///     let beat = try BeatProcess(redis: redis, schedule: file, name: "b1@test", leaseMs: 1500)
///     beat.kill9()
final class BeatProcess {
    /// The Redis keys of the scheduler's contract (design: `BeatKeys`), spelled out so the tests
    /// check the names themselves.
    static let schedulersKey = "celeris:beat:schedulers"
    static let leaderKey = "celeris:beat:leader"
    static let leadershipKey = "celeris:beat:leadership"
    static func entryKey(_ name: String) -> String { "celeris:beat:entry:\(name)" }

    let spawned: Spawned
    /// The scheduler id it registered under.
    let id: String
    /// The port of its `/metrics` (on 127.0.0.1), when started with `metrics: true`.
    let metricsPort: Int?

    /// Spawn `celeris-beat -b <redis> -n <name> --lease-ms <leaseMs> [-s schedule]
    /// [--metrics-port <free port> --metrics-host 127.0.0.1] extra…` and wait until it has
    /// registered in the schedulers zset.
    init(
        redis: RedisServer, schedule: URL?, name: String, leaseMs: Int = 3000, metrics: Bool = false,
        extra: [String] = [], timeout: Double = 20
    ) throws {
        let port = metrics ? freePort() : nil
        let args =
            ["-b", redis.url, "-n", name, "--lease-ms", "\(leaseMs)", "--loglevel", "debug"]
            + (schedule.map { ["-s", $0.path] } ?? [])
            + (port.map { ["--metrics-port", "\($0)", "--metrics-host", "127.0.0.1"] } ?? []) + extra
        let p = try Spawned(try TestPaths.executable("celeris-beat"), args, name: "beat-\(name)")
        let pid = "\(p.process.processIdentifier)"
        let client = try redis.client()
        var found: String?
        eventually(timeout: timeout) {
            found = (try? client.beatSchedulers())?.first { BeatProcess.pidField(of: $0) == pid }
            return found != nil || !p.isRunning
        }
        guard let found else {
            p.stop(grace: 1)
            throw TestFailure("celeris-beat \(name) did not register in \(Self.schedulersKey):\n\(p.log)")
        }
        spawned = p
        id = found
        metricsPort = port
    }

    /// Its `/metrics` samples (name with labels → value); throws when started without metrics.
    func metrics() throws -> [String: Double] {
        guard let metricsPort else { throw TestFailure("\(id) was started without --metrics-port") }
        return try Prometheus.scrape(port: metricsPort)
    }

    /// The pid part of a scheduler id: `beat@host:<pid>:<hex>` → `<pid>`.
    static func pidField(of id: String) -> String? {
        let parts = id.split(separator: ":", omittingEmptySubsequences: false)
        return parts.count >= 3 ? String(parts[parts.count - 2]) : nil
    }

    var pid: Int32 { spawned.process.processIdentifier }
    var log: String { spawned.log }
    var isRunning: Bool { spawned.isRunning }

    /// SIGKILL, and wait until it is gone.
    func kill9() {
        kill(pid, SIGKILL)
        spawned.process.waitUntilExit()
    }

    /// SIGTERM (a warm shutdown), without waiting.
    func terminate() { spawned.process.terminate() }

    /// Wait up to `timeout` seconds for the process to exit; its exit status, nil if still running.
    func exitStatus(timeout: Double = 10) -> Int32? {
        eventually(timeout: timeout, interval: 0.005) { !spawned.isRunning }
        guard !spawned.isRunning else { return nil }
        spawned.process.waitUntilExit()
        return spawned.process.terminationStatus
    }

    /// SIGTERM, then SIGKILL after `grace` seconds.
    func stop(grace: Double = 5) { spawned.stop(grace: grace) }

    /// A schedule file holding `text`, in a fresh temporary directory that `test`'s teardown removes.
    static func scheduleFile(_ text: String, removedAfter test: XCTestCase) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("celeris-beat-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("schedule.json")
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file
    }
}

/// One message a scheduler LPUSHed, decoded.
struct SentBeatMessage {
    let id: String
    let task: String
    let isBeatTask: Bool
    /// `[args, kwargs, embed]`.
    let body: JSON
    /// The `expires` header as epoch seconds (nil without one).
    let expires: Double?
}

/// A scheduler's state in Redis, as the tests read it.
extension RedisConnection {
    /// Redis's clock in milliseconds since the epoch (`TIME`).
    func redisMillis() throws -> Int64 {
        let parts = try command("TIME").elements?.compactMap { $0.text.flatMap { Int64($0) } } ?? []
        guard parts.count == 2 else { throw TestFailure("TIME answered \(parts)") }
        return parts[0] * 1000 + parts[1] / 1000
    }

    /// The members of `celeris:beat:schedulers`.
    func beatSchedulers() throws -> [String] {
        try command("ZRANGE", BeatProcess.schedulersKey, "0", "-1").elements?.compactMap(\.text) ?? []
    }

    /// The leader's id, nil when nobody holds the lease.
    func beatLeader() throws -> String? { try command("GET", BeatProcess.leaderKey).text }

    /// An entry's hash (`due`, `count`, `sent_at`, `task_id`, `next`, `spec`, `source`).
    func beatEntry(_ name: String) throws -> [String: String] {
        let flat = try command("HGETALL", BeatProcess.entryKey(name)).elements?.map { $0.text ?? "" } ?? []
        var out: [String: String] = [:]
        for i in stride(from: 0, to: flat.count - 1, by: 2) { out[flat[i]] = flat[i + 1] }
        return out
    }

    /// An integer field of an entry's hash (nil when absent or not an integer).
    func beatEntryField(_ name: String, _ field: String) throws -> Int64? {
        try command("HGET", BeatProcess.entryKey(name), field).text.flatMap { Int64($0) }
    }

    /// Every message on `queue` (priority 0's list), oldest first, decoded; throws on one that
    /// does not decode.
    func beatMessages(queue: String, priority: Int = 0) throws -> [SentBeatMessage] {
        let raws = try command("LRANGE", QueueKeys.listKey(queue: queue, priority: priority), "0", "-1").elements ?? []
        return try raws.reversed().map { value in
            guard let raw = value.bytes else { throw TestFailure("a non-string on \(queue)") }
            let envelope = try JSONParser.parse(raw)
            guard let headers = envelope["headers"], let id = headers["id"]?.stringValue,
                let task = headers["task"]?.stringValue, let body = KombuEnvelope.body(of: raw)
            else { throw TestFailure("not a task message: \(String(decoding: raw, as: UTF8.self))") }
            return SentBeatMessage(
                id: id, task: task, isBeatTask: headers["celery_beat_task"] == true, body: body,
                expires: headers["expires"]?.stringValue.flatMap(CeleryTime.parse))
        }
    }
}
