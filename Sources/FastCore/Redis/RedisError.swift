import CEventShim
import Foundation

/// A Redis failure: the connection broke, or Redis answered with an error.
public enum RedisError: Error, CustomStringConvertible, Sendable {
    case connection(String)
    case reply(String)
    public var description: String {
        switch self {
        case .connection(let m): return "Redis connection: \(m)"
        case .reply(let m): return "Redis error: \(m)"
        }
    }
}
