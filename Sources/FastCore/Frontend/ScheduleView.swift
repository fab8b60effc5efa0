/// `GET /schedule`'s answer, made from the reply of `ScheduleAPI.stateScript`: the leader, the
/// schedulers seen, and every entry with its run state (times ISO 8601 UTC, null when absent).
///
///     let body = ScheduleView.render(state: reply)  // {"leader": ..., "schedulers": [...], "entries": [...]}
enum ScheduleView {
    /// The answer for the script's reply `{leader id | nil, leadership pairs, scheduler (id, score)
    /// pairs, [name, entry hash pairs] per scheduled name, (name, JSON) pairs of dynamic entries not
    /// scheduled yet}`; nil when the reply has another shape.
    static func render(state reply: RedisValue) -> JSON? {
        guard let parts = reply.elements, parts.count == 5, let leadershipPairs = parts[1].elements,
            let schedulerPairs = parts[2].elements, let scheduled = parts[3].elements,
            let pendingPairs = parts[4].elements
        else { return nil }
        var leader = JSON.null
        if let id = parts[0].text {
            let leadership = fields(leadershipPairs)
            let since = leadership["id"] == id ? time(leadership["since"]) : .null
            leader = ["id": .string(id), "since": since]
        }
        var schedulers: [(id: String, seen: JSON)] = []
        for i in stride(from: 0, to: schedulerPairs.count - 1, by: 2) {
            guard let id = schedulerPairs[i].text else { continue }
            schedulers.append((id, time(schedulerPairs[i + 1].text)))
        }
        schedulers.sort { $0.id < $1.id }
        var entries: [(name: String, view: JSON)] = []
        for item in scheduled {
            guard let pair = item.elements, pair.count == 2, let name = pair[0].text, let hash = pair[1].elements
            else { continue }
            entries.append((name, entry(name: name, state: fields(hash))))
        }
        let pending = fields(pendingPairs)
        for (name, spec) in pending {
            entries.append(
                (name, entry(name: name, state: [BeatKeys.Field.source: "redis", BeatKeys.Field.spec: spec])))
        }
        entries.sort { $0.name < $1.name }
        return [
            "leader": leader,
            "schedulers": .array(schedulers.map { ["id": .string($0.id), "seen_at": $0.seen] }),
            "entries": .array(entries.map(\.view)),
        ]
    }

    /// One entry from its `celeris:beat:entry:<name>` fields (`source`, `spec`, `next`, `due`,
    /// `sent_at`, `count`, `task_id`); a missing or unreadable field is null (the count 0).
    static func entry(name: String, state: [String: String]) -> JSON {
        typealias F = BeatKeys.Field
        let spec = state[F.spec].flatMap { try? JSONParser.parse($0) } ?? .null
        let count = state[F.count].flatMap { Int64($0) } ?? 0
        return .object([
            ("name", .string(name)),
            ("source", state[F.source].map { .string($0) } ?? .null),
            ("entry", spec),
            ("next_run", time(state[F.next])),
            ("last_run", time(state[F.due])),
            ("last_sent_at", time(state[F.sentAt])),
            ("total_run_count", .int(count)),
            ("last_task_id", state[F.taskId].map { .string($0) } ?? .null),
        ])
    }

    /// Milliseconds since the epoch (a decimal string, as Redis keeps it) as ISO 8601 UTC; null when
    /// absent or not a number.
    static func time(_ ms: String?) -> JSON {
        guard let ms, let value = Double(ms), value.isFinite else { return .null }
        return .string(CeleryTime.isoformat(value / 1000))
    }

    /// A flat HGETALL-style reply `[k1, v1, k2, v2, ...]` as a dictionary (text fields only).
    static func fields(_ flat: [RedisValue]) -> [String: String] {
        var out: [String: String] = [:]
        for i in stride(from: 0, to: flat.count - 1, by: 2) {
            if let k = flat[i].text, let v = flat[i + 1].text { out[k] = v }
        }
        return out
    }
}
