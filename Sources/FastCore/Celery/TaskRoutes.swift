import Foundation

/// Celery's `task_routes`: task-name patterns (exact, or globs with `*` and
/// `?`) mapped to queues; the first matching rule wins.
///
///     var routes = TaskRoutes()
///     try routes.add(flag: "report_*=reports")
///     routes.queue(for: "report_daily")  // "reports"
public struct TaskRoutes: Sendable {
    public private(set) var rules: [(pattern: String, queue: String)]

    public init(rules: [(pattern: String, queue: String)] = []) { self.rules = rules }

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// Add a `PATTERN=QUEUE` rule ahead of the earlier ones.
    public mutating func add(flag: String) throws(Invalid) {
        let parts = flag.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw Invalid(description: "route must be PATTERN=QUEUE, got '\(flag)'")
        }
        rules.insert((parts[0], parts[1]), at: 0)
    }

    /// Add the rules of a JSON file `{"task_routes": {"pattern": "queue" | {"queue": "q"}}}`
    /// (or the inner object alone), ahead of the earlier ones, in file order.
    public mutating func add(file path: String) throws(Invalid) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Invalid(description: "cannot read \(path)")
        }
        guard let json = try? JSONParser.parse(Array(data)) else { throw Invalid(description: "\(path) is not JSON") }
        guard let table = (json["task_routes"] ?? json).objectPairs else {
            throw Invalid(description: "\(path): expected an object of pattern → queue")
        }
        var new: [(String, String)] = []
        for (pattern, value) in table {
            guard let q = value.stringValue ?? value["queue"]?.stringValue, !q.isEmpty else {
                throw Invalid(description: "\(path): route '\(pattern)' names no queue")
            }
            new.append((pattern, q))
        }
        rules.insert(contentsOf: new, at: 0)
    }

    /// The queue for a task name, or nil when no rule matches.
    public func queue(for task: String) -> String? {
        rules.first { fnmatch($0.pattern, task, 0) == 0 }?.queue
    }
}

extension TaskRoutes {
    /// `base`, then a routes file, then `--route` flags (later wins).
    public static func fromCommandLine(flags: [String], file: String?, base: TaskRoutes = TaskRoutes())
        throws(Invalid) -> TaskRoutes
    {
        var routes = base
        if let file { try routes.add(file: file) }
        for f in flags { try routes.add(flag: f) }
        return routes
    }
}
