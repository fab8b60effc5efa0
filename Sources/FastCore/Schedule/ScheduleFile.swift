import Foundation

/// A schedule file: Celery's `beat_schedule` setting written as JSON, plus a per-entry `catch_up`.
///
///     {"timezone": "Europe/Berlin",
///      "beat_schedule": {
///        "add-every-10s": {"task": "add", "schedule": 10, "args": [2, 3], "kwargs": {"z": 1},
///                          "options": {"queue": "math", "priority": 5, "expires": 30}, "catch_up": "skip"},
///        "nightly": {"task": "report", "schedule": {"crontab": {"minute": "0", "hour": "3"},
///                                                   "timezone": "Europe/Berlin"}}}}
///
/// - `beat_schedule` (required): an object, entry name (non-empty) → entry; names are unique.
/// - `timezone` (optional, top level): the IANA zone for crontab entries without their own
///   (Celery's `timezone` setting); absent: UTC.
/// - An entry has `task` (required, non-empty string), `schedule` (required), `args` (a list;
///   absent or null: `[]`), `kwargs` (an object; absent or null: `{}`), `options` (an object with
///   any of `queue` (non-empty string), `priority` (integer 0...9), `expires` (seconds, a number
///   0...`longestSeconds`); absent or null: none) and `catch_up` (`"skip"` or `"once"`; absent:
///   `"once"`, what Celery beat does).
/// - `schedule` is a number of seconds (positive, at most `longestSeconds`), or
///   `{"crontab": {...}, "timezone": "Area/City"}` where `crontab` holds any of `minute`, `hour`,
///   `day_of_month`, `month_of_year`, `day_of_week` (Celery's `crontab()` arguments: a string such
///   as `"*/15"` or `"mon-fri"`, or an integer; absent: `"*"`), or is one string of those five
///   fields in that order (`"*/5 * * * *"`); `timezone` is optional.
/// - Any other key, anywhere, is an error, as is a wrong type or value: every error names its
///   place (`ScheduleFileError.path`). Nothing in the input can trap.
///
///     let file = try ScheduleFile.load(path: "/etc/celeris/schedule.json")
///     for entry in file.entries { print(entry.name, entry.schedule) }
public struct ScheduleFile: Sendable, Equatable {
    /// The entries in the file's order.
    public var entries: [ScheduleEntry]

    /// The longest interval or `expires` accepted: ten years of seconds.
    public static let longestSeconds: Double = 10 * 366 * 86400
    /// The largest file `load` reads.
    public static let largestFile = 16 << 20
    /// The crontab fields in crontab order, as Celery's `crontab()` names them.
    public static let crontabFields = ["minute", "hour", "day_of_month", "month_of_year", "day_of_week"]

    /// A schedule of `entries`.
    ///
    ///     ScheduleFile(entries: [entry])
    public init(entries: [ScheduleEntry]) { self.entries = entries }

    /// Read and parse the file at `path`.
    ///
    ///     let file = try ScheduleFile.load(path: "schedule.json")
    public static func load(path: String) throws(ScheduleFileError) -> ScheduleFile {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ScheduleFileError(path: "", message: "cannot open \(path)")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: largestFile + 1) ?? Data()
        } catch {
            throw ScheduleFileError(path: "", message: "cannot read \(path): \(error)")
        }
        guard data.count <= largestFile else {
            throw ScheduleFileError(path: "", message: "\(path) is larger than \(largestFile) bytes")
        }
        return try parse(Array(data))
    }

    /// Parse a schedule file's text.
    ///
    ///     let file = try ScheduleFile.parse(#"{"beat_schedule": {"tick": {"task": "noop", "schedule": 1}}}"#)
    public static func parse(_ text: String) throws(ScheduleFileError) -> ScheduleFile {
        try parse(Array(text.utf8))
    }

    /// Parse a schedule file's bytes (UTF-8 JSON).
    ///
    ///     let file = try ScheduleFile.parse(Array(data))
    public static func parse(_ bytes: [UInt8]) throws(ScheduleFileError) -> ScheduleFile {
        let json: JSON
        do {
            json = try JSONParser.parse(bytes)
        } catch {
            throw ScheduleFileError(path: "", message: "not JSON: \(error.message) at byte \(error.offset)")
        }
        let top = try object(json, at: "", what: "the file")
        try refuseUnknown(top, known: ["beat_schedule", "timezone"], at: "")
        var zone: String? = nil
        if let z = value(top, "timezone"), !z.isNull { zone = try timezone(z, at: "timezone") }
        guard let scheduleValue = value(top, "beat_schedule") else {
            throw ScheduleFileError(path: "", message: "no \"beat_schedule\" object")
        }
        let pairs = try object(scheduleValue, at: "beat_schedule", what: "an object of entries")
        var seen: Set<String> = []
        var entries: [ScheduleEntry] = []
        entries.reserveCapacity(pairs.count)
        for (name, body) in pairs {
            let at = "beat_schedule." + name
            guard !name.isEmpty else { throw ScheduleFileError(path: at, message: "an entry name is empty") }
            guard seen.insert(name).inserted else { throw ScheduleFileError(path: at, message: "entry defined twice") }
            entries.append(try entry(name: name, body, at: at, defaultZone: zone))
        }
        return ScheduleFile(entries: entries)
    }

    // MARK: - Parts

    static func entry(name: String, _ json: JSON, at path: String, defaultZone: String?) throws(ScheduleFileError)
        -> ScheduleEntry
    {
        let pairs = try object(json, at: path, what: "an entry object")
        try refuseUnknown(pairs, known: ["task", "schedule", "args", "kwargs", "options", "catch_up"], at: path)
        guard case .string(let task)? = value(pairs, "task"), !task.isEmpty else {
            throw ScheduleFileError(path: path + ".task", message: "must be a non-empty string (the task's name)")
        }
        guard let scheduleJSON = value(pairs, "schedule") else {
            throw ScheduleFileError(path: path + ".schedule", message: "missing (seconds, or {\"crontab\": ...})")
        }
        let schedule = try self.schedule(scheduleJSON, at: path + ".schedule", defaultZone: defaultZone)
        var args: [JSON] = []
        switch value(pairs, "args") {
        case nil, .null?: break
        case .array(let a)?: args = a
        case let other?:
            throw ScheduleFileError(path: path + ".args", message: "must be a list, not \(kind(other))")
        }
        var kwargs: [(key: String, value: JSON)] = []
        switch value(pairs, "kwargs") {
        case nil, .null?: break
        case .object(let o)?:
            var keys: Set<String> = []
            for (k, _) in o where !keys.insert(k).inserted {
                throw ScheduleFileError(path: path + ".kwargs." + k, message: "keyword given twice")
            }
            kwargs = o
        case let other?:
            throw ScheduleFileError(path: path + ".kwargs", message: "must be an object, not \(kind(other))")
        }
        var options = ScheduleEntry.SendOptions()
        if let o = value(pairs, "options"), !o.isNull { options = try sendOptions(o, at: path + ".options") }
        var catchUp = ScheduleEntry.CatchUp.once
        if let c = value(pairs, "catch_up") {
            guard case .string(let s) = c, let policy = ScheduleEntry.CatchUp(rawValue: s) else {
                throw ScheduleFileError(path: path + ".catch_up", message: "must be \"skip\" or \"once\"")
            }
            catchUp = policy
        }
        return ScheduleEntry(
            name: name, task: task, schedule: schedule, args: args, kwargs: kwargs, options: options,
            catchUp: catchUp)
    }

    static func schedule(_ json: JSON, at path: String, defaultZone: String?) throws(ScheduleFileError)
        -> ScheduleEntry.Schedule
    {
        switch json {
        case .int, .double:
            let seconds = json.doubleValue ?? 0
            guard seconds.isFinite, seconds > 0, seconds <= longestSeconds else {
                throw ScheduleFileError(
                    path: path, message: "an interval must be more than 0 and at most \(Int(longestSeconds)) seconds")
            }
            return .interval(seconds: seconds)
        case .object(let pairs):
            try refuseUnknown(pairs, known: ["crontab", "timezone"], at: path)
            guard let cron = value(pairs, "crontab") else {
                throw ScheduleFileError(path: path, message: "an object schedule needs \"crontab\"")
            }
            var zone = defaultZone
            if let z = value(pairs, "timezone"), !z.isNull { zone = try timezone(z, at: path + ".timezone") }
            return .crontab(try crontab(cron, at: path + ".crontab"), timezone: zone)
        default:
            throw ScheduleFileError(
                path: path, message: "must be seconds or {\"crontab\": ...}, not \(kind(json))")
        }
    }

    /// The five fields joined in crontab order.
    static func crontab(_ json: JSON, at path: String) throws(ScheduleFileError) -> String {
        var fields: [String]
        switch json {
        case .string(let line):
            fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard fields.count == crontabFields.count else {
                throw ScheduleFileError(
                    path: path,
                    message: "a crontab line needs 5 fields (minute hour day_of_month month_of_year "
                        + "day_of_week), not \(fields.count)")
            }
            for (i, f) in fields.enumerated() { try checkField(f, at: path + "." + crontabFields[i]) }
        case .object(let pairs):
            try refuseUnknown(pairs, known: crontabFields, at: path)
            fields = []
            for name in crontabFields {
                let at = path + "." + name
                switch value(pairs, name) {
                case nil: fields.append("*")
                case .string(let s)?:
                    try checkField(s, at: at)
                    fields.append(s)
                case .int(let i)?:
                    guard (0...9999).contains(i) else {
                        throw ScheduleFileError(path: at, message: "\(i) is out of range")
                    }
                    fields.append(String(i))
                case let other?:
                    throw ScheduleFileError(path: at, message: "must be a string or an integer, not \(kind(other))")
                }
            }
        default:
            throw ScheduleFileError(
                path: path, message: "must be an object of crontab fields or a crontab line, not \(kind(json))")
        }
        return fields.joined(separator: " ")
    }

    /// A crontab field: non-empty, at most 256 characters of digits, letters, `*`, `,`, `-` and `/`.
    /// Its meaning is `Crontab`'s to check.
    static func checkField(_ s: String, at path: String) throws(ScheduleFileError) {
        guard !s.isEmpty, s.utf8.count <= 256 else {
            throw ScheduleFileError(path: path, message: "a crontab field must have 1 to 256 characters")
        }
        for b in s.utf8 {
            let ok =
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == UInt8(ascii: "*") || b == UInt8(ascii: ",") || b == UInt8(ascii: "-") || b == UInt8(ascii: "/")
            guard ok else {
                throw ScheduleFileError(
                    path: path,
                    message: "\(PythonRepr.repr(.string(s), limit: 80)) has a character a crontab field cannot hold")
            }
        }
    }

    static func sendOptions(_ json: JSON, at path: String) throws(ScheduleFileError) -> ScheduleEntry.SendOptions {
        let pairs = try object(json, at: path, what: "an options object")
        try refuseUnknown(pairs, known: ["queue", "priority", "expires"], at: path)
        var options = ScheduleEntry.SendOptions()
        switch value(pairs, "queue") {
        case nil, .null?: break
        case .string(let q)? where !q.isEmpty: options.queue = q
        case _?:
            throw ScheduleFileError(path: path + ".queue", message: "must be a non-empty string")
        }
        switch value(pairs, "priority") {
        case nil, .null?: break
        case let p?:
            guard let i = p.intValue, (0...9).contains(i) else {
                throw ScheduleFileError(path: path + ".priority", message: "must be an integer 0...9")
            }
            options.priority = Int(i)
        }
        switch value(pairs, "expires") {
        case nil, .null?: break
        case let e?:
            guard let s = e.doubleValue, s.isFinite, s >= 0, s <= longestSeconds else {
                throw ScheduleFileError(
                    path: path + ".expires", message: "must be seconds, 0...\(Int(longestSeconds))")
            }
            options.expires = s
        }
        return options
    }

    /// An IANA time zone name Foundation knows.
    static func timezone(_ json: JSON, at path: String) throws(ScheduleFileError) -> String {
        guard case .string(let name) = json, !name.isEmpty, name.utf8.count <= 128 else {
            throw ScheduleFileError(path: path, message: "must be a time zone name such as \"Europe/Berlin\"")
        }
        guard TimeZone(identifier: name) != nil else {
            throw ScheduleFileError(
                path: path, message: "unknown time zone \(PythonRepr.repr(.string(name), limit: 80))")
        }
        return name
    }

    // MARK: - Helpers

    static func object(_ json: JSON, at path: String, what: String) throws(ScheduleFileError)
        -> [(key: String, value: JSON)]
    {
        guard case .object(let pairs) = json else {
            throw ScheduleFileError(path: path, message: "must be \(what), not \(kind(json))")
        }
        return pairs
    }

    static func refuseUnknown(_ pairs: [(key: String, value: JSON)], known: [String], at path: String)
        throws(ScheduleFileError)
    {
        var seen: Set<String> = []
        for (key, _) in pairs {
            let at = path.isEmpty ? key : path + "." + key
            guard known.contains(key) else {
                throw ScheduleFileError(
                    path: at, message: "unknown key (known here: \(known.joined(separator: ", ")))")
            }
            guard seen.insert(key).inserted else { throw ScheduleFileError(path: at, message: "key given twice") }
        }
    }

    static func value(_ pairs: [(key: String, value: JSON)], _ key: String) -> JSON? {
        pairs.first(where: { $0.key == key })?.value
    }

    static func kind(_ json: JSON) -> String {
        switch json {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .double: return "a number"
        case .string: return "a string"
        case .array: return "a list"
        case .object: return "an object"
        }
    }
}
