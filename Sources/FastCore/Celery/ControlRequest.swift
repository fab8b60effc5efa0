import Foundation
import Logging

/// One remote-control command from Celery's pidbox broadcast.
public struct ControlRequest: Sendable {
    /// The most executor slots a command may ask for (`pool_grow`, `autoscale`): what
    /// `celeris-worker --concurrency` allows.
    public static let maxConcurrency = 4096
    /// The longest time limit `time_limit` sets: a year.
    public static let maxTimeLimit: Double = 365 * 86400
    /// The longest queue name `add_consumer` takes, in bytes.
    public static let maxQueueName = 255

    public var method: String
    public var arguments: JSON
    public var ticket: String?
    /// Where the answer goes: kombu's reply exchange and routing key.
    public var replyTo: (exchange: String, routingKey: String)?
    /// Node names the command is for; nil means every worker.
    public var destination: [String]?

    /// Decode a broadcast envelope; nil when it is not a pidbox command or has expired.
    public init?(envelope raw: [UInt8], now: Double) {
        guard let (headers, body) = KombuEnvelope.read(raw), let method = body["method"]?.stringValue else {
            return nil
        }
        if let expires = headers["expires"]?.doubleValue, expires < now { return nil }
        self.method = method
        arguments = body["arguments"] ?? [:]
        ticket = body["ticket"]?.stringValue
        if let ex = body["reply_to"]?["exchange"]?.stringValue, let rk = body["reply_to"]?["routing_key"]?.stringValue {
            replyTo = (ex, rk)
        }
        destination = body["destination"]?.arrayValue?.compactMap(\.stringValue)
    }

    /// Whether argument `name` is absent or null (the command's default applies).
    public func lacks(_ name: String) -> Bool { arguments[name]?.isNull ?? true }

    /// Argument `name` as an integer in `range`: a JSON integer, a whole number, or
    /// digits in a string (as Celery's command line sends them); nil when it is
    /// absent or anything else.
    public func integer(_ name: String, in range: ClosedRange<Int>) -> Int? {
        let value: Int64?
        switch arguments[name] {
        case .string(let s)?: value = Int64(s.trimmingCharacters(in: .whitespaces))
        case let v?: value = v.intValue
        case nil: value = nil
        }
        guard let value, let n = Int(exactly: value), range.contains(n) else { return nil }
        return n
    }

    /// Argument `name` as a number of seconds in `range`: a JSON number or a number in a
    /// string; nil when it is absent, not finite, out of range or anything else.
    public func seconds(_ name: String, in range: ClosedRange<Double>) -> Double? {
        let value: Double?
        switch arguments[name] {
        case .string(let s)?: value = Double(s.trimmingCharacters(in: .whitespaces))
        case let v?: value = v.doubleValue
        case nil: value = nil
        }
        guard let value, value.isFinite, range.contains(value) else { return nil }
        return value
    }

    /// Whether a worker named `node` should act on it.
    public func isFor(_ node: String) -> Bool { destination.map { $0.isEmpty || $0.contains(node) } ?? true }
}
