import Foundation
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
        guard let env = try? JSONParser.parse(raw), let body = KombuEnvelope.body(of: raw),
            let method = body["method"]?.stringValue
        else { return nil }
        if let expires = env["headers"]?["expires"]?.doubleValue, expires < now { return nil }
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

/// Listens on kombu's pidbox fanout channel (`/<db>.celery.pidbox`) on a
/// thread of its own and hands each command to `deliver`; reconnects by itself.
///
///     let listener = RemoteControlListener(endpoint: ep, logger: log) { consumer.control($0) }
///     listener.start()
public final class RemoteControlListener: @unchecked Sendable {
    public static let exchange = "celery.pidbox"
    private let endpoint: RedisEndpoint
    private let logger: Logger
    private let deliver: @Sendable (ControlRequest) -> Void

    public init(endpoint: RedisEndpoint, logger: Logger, deliver: @escaping @Sendable (ControlRequest) -> Void) {
        self.endpoint = endpoint
        self.logger = logger
        self.deliver = deliver
    }

    /// Start listening (the thread lives as long as the process).
    public func start() {
        let t = Thread { [self] in listen() }
        t.name = "celeris-pidbox"
        t.start()
    }

    private func listen() {
        let channel = KombuEnvelope.fanoutChannel(db: endpoint.db, exchange: RemoteControlListener.exchange)
        while true {
            do {
                let redis = try RedisConnection(endpoint: endpoint, readTimeoutMs: 0)  // waits for broadcasts
                try redis.command("SUBSCRIBE", channel)
                while true {
                    let msg = try redis.read()
                    guard let parts = msg.elements, parts.count == 3, parts[0].text == "message",
                        let payload = parts[2].bytes
                    else { continue }
                    if let request = ControlRequest(envelope: payload, now: CeleryTime.now()) { deliver(request) }
                }
            } catch {
                logger.debug("remote control listener: \(error); reconnecting")
                Thread.sleep(forTimeInterval: 0.5)
            }
        }
    }
}
