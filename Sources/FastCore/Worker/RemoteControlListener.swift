import Foundation
import Logging

/// Listens on kombu's pidbox fanout channel (`/<db>.celery.pidbox`) on a
/// thread of its own and hands each command to `deliver`; reconnects by itself.
///
///     let listener = RemoteControlListener(endpoint: ep, logger: log) { consumer.control($0) }
///     listener.start()
public final class RemoteControlListener: @unchecked Sendable {
    public static let exchange = "celery.pidbox"
    private let endpoint: RedisEndpoint
    private let logger: Logger
    /// Judges a request's `expires` header.
    private let clock: any WallClock
    private let deliver: @Sendable (ControlRequest) -> Void

    public init(
        endpoint: RedisEndpoint, logger: Logger, clock: any WallClock = SystemClock(),
        deliver: @escaping @Sendable (ControlRequest) -> Void
    ) {
        self.endpoint = endpoint
        self.logger = logger
        self.clock = clock
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
                var seen = 0  // behind sentinels: their last announcement looked at
                while true {
                    // Behind sentinels, a master they replaced is left at once (broadcasts go to the new
                    // one), not when they demote it seconds later: looked at each second of quiet.
                    if let sentinel = endpoint.sentinel, !redis.hasBufferedInput {
                        var fd = pollfd(fd: redis.socket, events: Int16(POLLIN), revents: 0)
                        if poll(&fd, 1, 1000) == 0 {
                            if let moved = SentinelAnnouncements.moved(
                                sentinel, from: redis.server, seen: &seen, logger: logger)
                            {
                                throw RedisError.connection("the sentinels named \(moved) master")
                            }
                            continue
                        }
                    }
                    let msg = try redis.read()
                    guard let parts = msg.elements, parts.count == 3, parts[0].text == "message",
                        let payload = parts[2].bytes
                    else { continue }
                    if let request = ControlRequest(envelope: payload, now: clock.now()) { deliver(request) }
                }
            } catch {
                logger.debug("remote control listener: \(error); reconnecting")
                Thread.sleep(forTimeInterval: 0.5)  // a pause before reconnecting, not a judged time
            }
        }
    }
}
