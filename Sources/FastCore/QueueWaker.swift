import Foundation
import Logging

/// Wakes an idle consumer the moment a queue gets a message, instead of it
/// polling: on a connection of its own, `BLMOVE list list RIGHT RIGHT 1`
/// blocks while the list is empty and, once it is not, rotates the oldest
/// message onto itself (the message never leaves Redis, so nothing is at risk)
/// and returns. One thread per queue, blocked in Redis only while armed.
///
///     let waker = QueueWaker(endpoint: ep, listKey: "celery", logger: log) { outbox.wake() }
///     waker.arm()  // the consumer found nothing and is about to wait
public final class QueueWaker: @unchecked Sendable {
    private let endpoint: RedisEndpoint
    private let listKey: String
    private let logger: Logger
    private let wake: @Sendable () -> Void
    private let condition = NSCondition()
    private var armed = false
    private var stopped = false

    public init(endpoint: RedisEndpoint, listKey: String, logger: Logger, wake: @escaping @Sendable () -> Void) {
        self.endpoint = endpoint
        self.listKey = listKey
        self.logger = logger
        self.wake = wake
        let t = Thread { [self] in run() }
        t.name = "celeris-waker"
        t.start()
    }

    /// The consumer is about to wait: call `wake` as soon as the list is non-empty.
    public func arm() {
        let armedNow = condition.withLock {
            guard !armed else { return false }
            armed = true
            return true
        }
        if armedNow { condition.signal() }
    }

    /// Armed and not fired yet: no message has landed since `arm` (or the waker is off).
    public var isArmed: Bool { condition.withLock { armed } }

    /// End the thread (within the 1 s block).
    public func stop() {
        condition.withLock {
            stopped = true
            condition.signal()
        }
    }

    private func run() {
        var redis: RedisConnection?
        while true {
            let go = condition.withLock { () -> Bool in
                while !armed && !stopped { condition.wait() }
                return !stopped
            }
            guard go else { return }
            do {
                if redis == nil { redis = try RedisConnection(endpoint: endpoint, timeoutMs: 3000) }
                let reply = try redis!.command("BLMOVE", listKey, listKey, "RIGHT", "RIGHT", "1")
                if let e = reply.errorMessage {
                    logger.warning("queue waker for \(listKey) off (\(e)); the consumer polls")
                    return
                }
                if case .null = reply { continue }  // a second without messages: block again if still armed
                condition.withLock { armed = false }
                wake()
            } catch {
                redis = nil  // the consumer notices the outage itself; retry after a pause
                Thread.sleep(forTimeInterval: 0.5)
            }
        }
    }
}
