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
    // Exclusivity: these are used under `lock` only: the run-time check is pure cost.
    @exclusivity(unchecked) private var counters: [String: Counter] = [:]
    @exclusivity(unchecked) private var timers: [String: Timer] = [:]

    public init() {}

    public func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
        cached(label, dimensions, in: &counters) { Counter(label: label, dimensions: dimensions) }
    }

    public func timer(_ label: String, _ dimensions: [(String, String)] = []) -> Timer {
        cached(label, dimensions, in: &timers) { Timer(label: label, dimensions: dimensions) }
    }

    /// The handle for label and dimensions in `cache`, made by `make` the first time.
    private func cached<Handle>(
        _ label: String, _ dimensions: [(String, String)], in cache: inout [String: Handle], make: () -> Handle
    ) -> Handle {
        let key = Self.key(label, dimensions)
        lock.lock()
        defer { lock.unlock() }
        if let h = cache[key] { return h }
        let h = make()
        cache[key] = h
        return h
    }

    private static func key(_ label: String, _ dimensions: [(String, String)]) -> String {
        dimensions.reduce(label) { $0 + "\u{1}" + $1.0 + "=" + $1.1 }
    }
}
