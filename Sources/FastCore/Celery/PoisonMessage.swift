import Foundation

/// Why a queued message cannot be run; such a message goes to the dead-letter list.
public struct PoisonMessage: Error, CustomStringConvertible, Sendable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
