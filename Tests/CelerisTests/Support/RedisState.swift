import FastCore
import Foundation

/// Reads of the broker's and result backend's state that suites share.
extension RedisConnection {
    /// Every key matching `pattern` (`KEYS`, fine on a test's own small Redis).
    func keys(_ pattern: String = "*") throws -> Set<String> {
        Set(try command("KEYS", pattern).elements?.compactMap(\.text) ?? [])
    }

    /// How many task results are stored (`celery-task-meta-*`), counted inside Redis.
    func resultCount() throws -> Int64 {
        try command("EVAL", "return #redis.call('KEYS', 'celery-task-meta-*')", "0").integer ?? 0
    }

    /// A task's stored result record, or nil.
    func result(_ id: String) throws -> JSON? {
        guard let b = try command("GET", ResultRecord.key(id)).bytes else { return nil }
        return try JSONParser.parse(b)
    }

    /// How many times the Python fixture worker (Fixtures/fixture_app.py) ran `id` to
    /// success: its `task_success` handler counts them in `fixture.python.succeeded`.
    func pythonSuccesses(_ id: String) throws -> Int {
        Int(try command("HGET", PythonWorker.succeededKey, id).text ?? "0") ?? 0
    }

    /// A field of `INFO <section>` as a number (nil when absent).
    func info(_ section: String, _ field: String) throws -> Int? {
        let text = try command("INFO", section).text ?? ""
        let line = text.split(separator: "\r\n").first { $0.hasPrefix(field + ":") }
        return line.flatMap { Int($0.split(separator: ":").last ?? "") }
    }
}
