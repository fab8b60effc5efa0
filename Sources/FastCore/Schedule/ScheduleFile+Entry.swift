extension ScheduleFile {
    /// The largest single entry `parseEntry(name:text:)` and `parseEntry(name:bytes:)` read: 64 KiB.
    public static let largestEntry = 64 << 10

    /// Parse one entry object, as a schedule file's `beat_schedule` spells an entry (`task`,
    /// `schedule`, `args`, `kwargs`, `options`, `catch_up`). `defaultZone` is the zone of a crontab
    /// without its own `timezone` (nil: none recorded, UTC). Errors name the place inside the entry
    /// (`options.priority`), or none (`""`) for the entry as a whole.
    ///
    ///     let entry = try ScheduleFile.parseEntry(name: "tick", json: ["task": "noop", "schedule": 5])
    public static func parseEntry(name: String, json: JSON, defaultZone: String? = nil) throws(ScheduleFileError)
        -> ScheduleEntry
    {
        guard !name.isEmpty else { throw ScheduleFileError(path: "", message: "an entry name is empty") }
        do {
            return try entry(name: name, json, at: "", defaultZone: defaultZone)
        } catch {
            // `entry` joins places with "."; at the top of an entry there is nothing before the first.
            let path = error.path.hasPrefix(".") ? String(error.path.dropFirst()) : error.path
            throw ScheduleFileError(path: path, message: error.message)
        }
    }

    /// Parse one entry object from its JSON text (at most `largestEntry` bytes).
    ///
    ///     let entry = try ScheduleFile.parseEntry(name: "tick", text: #"{"task": "noop", "schedule": 5}"#)
    public static func parseEntry(name: String, text: String, defaultZone: String? = nil) throws(ScheduleFileError)
        -> ScheduleEntry
    {
        try parseEntry(name: name, bytes: Array(text.utf8), defaultZone: defaultZone)
    }

    /// Parse one entry object from its UTF-8 JSON bytes (at most `largestEntry`), e.g. a request
    /// body or a value of `celeris:beat:dynamic`.
    ///
    ///     let entry = try ScheduleFile.parseEntry(name: "tick", bytes: request.body)
    public static func parseEntry(name: String, bytes: [UInt8], defaultZone: String? = nil) throws(ScheduleFileError)
        -> ScheduleEntry
    {
        guard bytes.count <= largestEntry else {
            throw ScheduleFileError(
                path: "", message: "an entry is \(bytes.count) bytes, more than the \(largestEntry) allowed")
        }
        let json: JSON
        do {
            json = try JSONParser.parse(bytes)
        } catch {
            throw ScheduleFileError(path: "", message: "not JSON: \(error.message) at byte \(error.offset)")
        }
        return try parseEntry(name: name, json: json, defaultZone: defaultZone)
    }
}
