import Foundation
import Metrics

/// swift-metrics handles by label and dimensions, made once and reused: making
/// one looks it up in the backend's registry (with name validation in
/// Prometheus), which showed up per request and per task in profiles.
///
///     MetricHandles.shared.counter("celeris_tasks_received_total", [("task", "add")]).increment()
public final class MetricHandles: @unchecked Sendable {
    public static let shared = MetricHandles()
    private let lock = NSLock()
    private var counters: [String: Counter] = [:]
    private var timers: [String: Timer] = [:]

    public init() {}

    public func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
        let key = Self.key(label, dimensions)
        return lock.withLock {
            if let c = counters[key] { return c }
            let c = Counter(label: label, dimensions: dimensions)
            counters[key] = c
            return c
        }
    }

    public func timer(_ label: String, _ dimensions: [(String, String)] = []) -> Timer {
        let key = Self.key(label, dimensions)
        return lock.withLock {
            if let t = timers[key] { return t }
            let t = Timer(label: label, dimensions: dimensions)
            timers[key] = t
            return t
        }
    }

    private static func key(_ label: String, _ dimensions: [(String, String)]) -> String {
        dimensions.reduce(label) { $0 + "\u{1}" + $1.0 + "=" + $1.1 }
    }
}
