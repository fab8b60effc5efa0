import Logging

/// One remote-control command from Celery's pidbox broadcast.
public struct ControlRequest: Sendable {
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

    /// Whether a worker named `node` should act on it.
    public func isFor(_ node: String) -> Bool { destination.map { $0.isEmpty || $0.contains(node) } ?? true }
}
