/// A task rate in Celery's notation: `"10/s"`, `"100/m"`, `"1000/h"`, or a bare number per second.
/// A rate is a finite number ≥ 0; a non-zero one is at least `minimumPerSecond`, so the
/// wait for a token (and the due time `inspect scheduled` shows) stays within a day.
public struct RateLimit: Sendable, Equatable, CustomStringConvertible {
    /// The slowest rate: one task a day.
    public static let minimumPerSecond = 1.0 / 86400
    /// The longest rate text read (a number and a unit).
    public static let maxTextLength = 64

    public let perSecond: Double
    public let text: String

    public init?(_ text: String) {
        guard text.utf8.count <= RateLimit.maxTextLength else { return nil }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard let n = Double(parts.first ?? ""), n >= 0, n.isFinite, parts.count <= 2 else { return nil }
        let unit = parts.count == 2 ? String(parts[1]) : "s"
        let seconds: Double
        switch unit {
        case "s": seconds = 1
        case "m": seconds = 60
        case "h": seconds = 3600
        default: return nil
        }
        perSecond = n / seconds
        guard perSecond == 0 || perSecond >= RateLimit.minimumPerSecond else { return nil }
        self.text = text
    }

    public var description: String { text }
}
