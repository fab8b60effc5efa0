/// A task rate in Celery's notation: `"10/s"`, `"100/m"`, `"1000/h"`, or a bare number per second.
public struct RateLimit: Sendable, Equatable, CustomStringConvertible {
    public let perSecond: Double
    public let text: String

    public init?(_ text: String) {
        let parts = text.split(separator: "/")
        guard let n = Double(parts.first ?? ""), n >= 0, parts.count <= 2 else { return nil }
        let unit = parts.count == 2 ? String(parts[1]) : "s"
        let seconds: Double
        switch unit {
        case "s": seconds = 1
        case "m": seconds = 60
        case "h": seconds = 3600
        default: return nil
        }
        perSecond = n / seconds
        self.text = text
    }

    public var description: String { text }
}
