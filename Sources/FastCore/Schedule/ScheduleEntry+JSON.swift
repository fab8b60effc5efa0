extension ScheduleEntry {
    /// The entry as a schedule file's entry object spells it: `task`, `schedule` (seconds, an
    /// integer when whole, or `{"crontab": "<5 fields>"}` with `"timezone"` when the entry has one),
    /// `args`, `kwargs` (in order), `options` (only the options set), `catch_up`.
    /// `ScheduleFile.parseEntry(name:json:)` of it gives this entry back.
    ///
    ///     let spec = entry.jsonObject().serialized()  // {"task": "add", "schedule": 10, ...}
    public func jsonObject() -> JSON {
        var options: [(key: String, value: JSON)] = []
        if let queue = self.options.queue { options.append((key: "queue", value: .string(queue))) }
        if let priority = self.options.priority { options.append((key: "priority", value: .int(Int64(priority)))) }
        if let expires = self.options.expires { options.append((key: "expires", value: Self.seconds(expires))) }
        return .object([
            (key: "task", value: .string(task)),
            (key: "schedule", value: scheduleJSON()),
            (key: "args", value: .array(args)),
            (key: "kwargs", value: .object(kwargs)),
            (key: "options", value: .object(options)),
            (key: "catch_up", value: .string(catchUp.rawValue)),
        ])
    }

    private func scheduleJSON() -> JSON {
        switch schedule {
        case .interval(let seconds):
            return Self.seconds(seconds)
        case .crontab(let fields, let timezone):
            var pairs: [(key: String, value: JSON)] = [(key: "crontab", value: .string(fields))]
            if let timezone { pairs.append((key: "timezone", value: .string(timezone))) }
            return .object(pairs)
        }
    }

    /// Whole seconds as an integer (as a file would write them), others as a number.
    private static func seconds(_ value: Double) -> JSON {
        if value.isFinite, value.rounded() == value, abs(value) < 9e15 { return .int(Int64(value)) }
        return .double(value)
    }
}
