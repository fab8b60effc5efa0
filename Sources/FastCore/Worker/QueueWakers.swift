import Logging

/// One `QueueWaker` per consumed queue (its priority-0 list), made on the first idle
/// turn: armed when the queues look drained, so the loop's wait ends the moment a
/// message lands instead of polling.
///
///     var wakers = QueueWakers(endpoint: ep, logger: log)
///     wakers.arm(queues: ["celery"], now: clock.now())
///     wakers.sockets(into: &watched)
struct QueueWakers {
    private var wakers: [String: QueueWaker] = [:]
    private let endpoint: RedisEndpoint
    private let logger: Logger

    init(endpoint: RedisEndpoint, logger: Logger) {
        self.endpoint = endpoint
        self.logger = logger
    }

    /// Have each queue's waker end the coming wait when a message lands (the wait's own
    /// timeout still polls the priority lists and queues added later).
    mutating func arm(queues: [String], now: Double) {
        for q in queues {
            let waker: QueueWaker
            if let w = wakers[q] {
                waker = w
            } else {
                waker = QueueWaker(
                    endpoint: endpoint, listKey: QueueKeys.listKey(queue: q, priority: 0), logger: logger)
                wakers[q] = waker
            }
            waker.arm(now: now)
        }
    }

    /// The armed wakers' sockets, appended to `watched`.
    func sockets(into watched: inout [Int32]) {
        for w in wakers.values { if let s = w.socket { watched.append(s) } }
    }

    /// Read the answers of the wakers whose sockets the wait found readable.
    func fired(_ sockets: [Int32], now: Double) {
        for w in wakers.values {
            if let s = w.socket, sockets.contains(s) { _ = w.fired(now: now) }
        }
    }

    /// Every queue's waker is waiting for a message (none has fired since armed).
    func allArmed(_ queues: [String]) -> Bool { queues.allSatisfy { wakers[$0]?.isArmed ?? false } }

    func stop() { for w in wakers.values { w.stop() } }
}
