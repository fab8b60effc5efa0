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

/// Whole-keyspace and envelope views the scheduler's suites (BeatLeaseTests, SchedulerTests) compare.
extension RedisConnection {
    /// Every key with its type and value as one comparable string (`type:value`; set members
    /// and hash fields sorted, lists and zsets in Redis's order).
    ///
    ///     XCTAssertEqual(try client.keyspace(), [:])
    func keyspace() throws -> [String: String] {
        var out: [String: String] = [:]
        for key in try keys() {
            let type = try command("TYPE", key).text ?? "?"
            let value: String
            switch type {
            case "string": value = try command("GET", key).text ?? ""
            case "list": value = (try command("LRANGE", key, "0", "-1").elements ?? []).compactMap(\.text).description
            case "set": value = (try command("SMEMBERS", key).elements ?? []).compactMap(\.text).sorted().description
            case "zset":
                let flat = (try command("ZRANGE", key, "0", "-1", "WITHSCORES").elements ?? []).compactMap(\.text)
                value = stride(from: 0, to: flat.count - 1, by: 2).map { flat[$0] + "=" + flat[$0 + 1] }.description
            case "hash":
                let flat = (try command("HGETALL", key).elements ?? []).compactMap(\.text)
                value =
                    stride(from: 0, to: flat.count - 1, by: 2).map { flat[$0] + "=" + flat[$0 + 1] }.sorted()
                    .description
            default: value = "?"
            }
            out[key] = type + ":" + value
        }
        return out
    }
}

/// A kombu envelope with its random per-envelope properties (`reply_to`, `delivery_tag`)
/// blanked, so two envelopes of the same message compare equal.
///
///     XCTAssertEqual(try envelopeBlankingRandomProperties(queued), try envelopeBlankingRandomProperties(expected))
func envelopeBlankingRandomProperties(_ bytes: [UInt8]) throws -> JSON {
    guard case .object(var top) = try JSONParser.parse(bytes),
        let p = top.firstIndex(where: { $0.key == "properties" }), case .object(var properties) = top[p].value
    else { throw TestFailure("not an envelope: \(String(decoding: bytes, as: UTF8.self))") }
    for i in properties.indices where ["reply_to", "delivery_tag"].contains(properties[i].key) {
        properties[i].value = ""
    }
    top[p].value = .object(properties)
    return .object(top)
}
