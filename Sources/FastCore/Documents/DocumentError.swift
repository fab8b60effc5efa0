import Foundation

/// A per-document failure, reported next to the results instead of failing the run.
public struct DocumentError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}
