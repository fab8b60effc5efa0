import FastCore
import Foundation

/// A real `celery worker` (Celery 5.7, solo pool) running Fixtures/fixture_app.py.
enum PythonWorker {
    /// Where fixture_app.py counts the tasks it ran to success, by id.
    static let succeededKey = "fixture.python.succeeded"

    /// Spawn one named `name` consuming `queues`, and wait until it has bound its
    /// remote-control queue (`_kombu.binding.celery.pidbox` holds `<name>.celery.pidbox`),
    /// which Celery does once its task consumer is set up, and has PSUBSCRIBEd the pidbox fanout.
    static func spawn(
        redis: RedisServer, name: String = "py@test", queues: String? = nil, env: [String: String] = [:]
    ) throws -> Spawned {
        let client = try redis.client()
        // Celery's broadcast consumer PSUBSCRIBEs `/0.celery.pidbox` after the binding is written:
        // a revoke published between the two is not heard, so wait for the pattern too.
        func patterns() -> Int64 { (try? client.command("PUBSUB", "NUMPAT").integer) ?? -1 }
        let before = patterns()
        let p = try Spawned(
            try TestPaths.python(),
            ["-m", "celery", "-A", "fixture_app", "worker", "-P", "solo", "-c", "1", "--loglevel=info", "-n", name]
                + (queues.map { ["-Q", $0] } ?? []) + ["--without-mingle", "--without-gossip"],
            env: ["CELERY_BROKER_URL": redis.url].merging(env) { $1 }, cwd: TestPaths.fixtures, name: "pyworker")
        let ready = eventually(timeout: 30) {
            let members = (try? client.command("SMEMBERS", "_kombu.binding.celery.pidbox").elements) ?? []
            return members.contains { $0.text?.hasSuffix("\(name).celery.pidbox") ?? false }
                && patterns() > max(before, 0)
        }
        if !ready {
            throw TestFailure("python worker \(name) did not bind and subscribe its pidbox queue:\n\(p.log)")
        }
        return p
    }
}

/// The JSON on the last `RESULT ` line a fixture script printed.
func resultLine(_ output: String) throws -> JSON {
    guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("RESULT ") }) else {
        throw TestFailure("no RESULT line in:\n\(output)")
    }
    return try JSONParser.parse(String(line.dropFirst("RESULT ".count)))
}
