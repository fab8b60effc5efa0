import Foundation
import Logging

/// Wakes an idle consumer the moment a queue gets a message, instead of it
/// polling: on a connection of its own, `BLMOVE list list RIGHT RIGHT 0`
/// blocks while the list is empty and, once it is not, rotates the oldest
/// message onto itself (the message never leaves Redis, so nothing is at risk)
/// and answers. The consumer sends it (`arm`) when it finds the queues drained,
/// and waits on the connection's socket together with its outbox: no thread of
/// its own, so a wake-up costs no thread hand-off.
///
///     let waker = QueueWaker(endpoint: ep, listKey: "celery", logger: log)
///     waker.arm(now: clock.now())
///     var ready: [Int32] = []
///     _ = outbox.take(waitingUpTo: 0.1, watching: waker.socket.map { [$0] } ?? [], readable: &ready)
///     if let s = waker.socket, ready.contains(s), waker.fired(now: clock.now()) { /* claim */ }
public final class QueueWaker {
    private let endpoint: RedisEndpoint
    private let listKey: String
    private let logger: Logger
    private var redis: RedisConnection?
    /// A BLMOVE was sent and its answer not read.
    private var outstanding = false
    /// Redis refused BLMOVE (an old server, an ACL): the consumer polls.
    private var off = false
    /// After a lost connection: when to connect again.
    private var retryAt = 0.0

    public init(endpoint: RedisEndpoint, listKey: String, logger: Logger) {
        self.endpoint = endpoint
        self.listKey = listKey
        self.logger = logger
        blockingMove = RESP.format(["BLMOVE", listKey, listKey, "RIGHT", "RIGHT", "0"])
    }

    /// The BLMOVE each arming sends, encoded once.
    private let blockingMove: [UInt8]

    /// No message has landed since `arm` as far as this waker has read (or it is off,
    /// and the consumer polls).
    public var isArmed: Bool { outstanding || off }

    /// The socket to wait on while armed.
    public var socket: Int32? { outstanding ? redis?.socket : nil }

    /// The queue looked drained: send the BLMOVE unless one is already out.
    public func arm(now: Double) {
        guard !outstanding, !off, now >= retryAt else { return }
        do {
            if redis == nil { redis = try RedisConnection(endpoint: endpoint, timeoutMs: 3000) }
            try redis!.append(resp: blockingMove)
            try redis!.flush()
            outstanding = true
        } catch {
            lost(now)
        }
    }

    /// The socket was readable: read the answer. True when the list got a message (or
    /// the connection broke: the consumer's claim then finds out what Redis holds).
    public func fired(now: Double) -> Bool {
        guard outstanding, let r = redis else { return false }
        outstanding = false
        do {
            // Looked at where it was parsed: the moved message itself is not copied out.
            let (error, isNull) = try r.read { ($0.isError ? $0.text : nil, $0.isNil) }
            if let error, QueueWaker.meansFailover(error), endpoint.sentinel != nil || !endpoint.failover.isEmpty {
                // A master demoted under us (UNBLOCKED, READONLY): connect again (to the master now).
                logger.warning("queue waker for \(listKey): \(error); connecting again")
                lost(now)
                return true
            }
            if let error {
                logger.warning("queue waker for \(listKey) off (\(error)); the consumer polls")
                off = true
                redis = nil
                return false
            }
            return !isNull
        } catch {
            lost(now)
            return true
        }
    }

    /// Close the connection (a BLMOVE still out ends with it).
    public func stop() {
        redis = nil
        outstanding = false
    }

    /// An error reply that says the server stopped being the master (a failover), not that the
    /// command is refused: the link is dropped and made again, to the master the endpoint names then.
    static func meansFailover(_ error: String) -> Bool {
        error.hasPrefix("UNBLOCKED") || error.hasPrefix("READONLY")
    }

    private func lost(_ now: Double) {
        redis = nil
        outstanding = false
        retryAt = now + 0.5
    }
}
