import Foundation

/// What the frontend's loops share: totals for `/health` and `/metrics`, the
/// queues requests went to, and the request to stop. Each loop writes its own
/// slot; reads sum them.
///
///     let shared = FrontendShared(loops: 2)
///     shared.setWebSockets(loop: 1, 40)
///     shared.webSockets  // 40 plus loop 0's
final class FrontendShared: @unchecked Sendable {
    private let lock = NSLock()
    private var webSocketsByLoop: [Int]
    private var pendingByLoop: [Int]
    private var brokerUpByLoop: [Bool]
    private var queueNames: Set<String> = ["celery"]
    private var stop = false

    init(loops: Int) {
        webSocketsByLoop = Array(repeating: 0, count: loops)
        pendingByLoop = Array(repeating: 0, count: loops)
        brokerUpByLoop = Array(repeating: false, count: loops)
    }

    var loops: Int { webSocketsByLoop.count }

    func setWebSockets(loop: Int, _ n: Int) { lock.withLock { webSocketsByLoop[loop] = n } }
    func setRedisPending(loop: Int, _ n: Int) { lock.withLock { pendingByLoop[loop] = n } }
    func setBrokerUp(loop: Int, _ up: Bool) { lock.withLock { brokerUpByLoop[loop] = up } }
    func addQueue(_ name: String) { _ = lock.withLock { queueNames.insert(name) } }

    /// Open WebSockets on every loop.
    var webSockets: Int { lock.withLock { webSocketsByLoop.reduce(0, +) } }
    /// Redis commands awaiting replies on every loop's connection.
    var redisPending: Int { lock.withLock { pendingByLoop.reduce(0, +) } }
    /// Every loop's Redis connections are up.
    var brokerUp: Bool { lock.withLock { brokerUpByLoop.allSatisfy { $0 } } }
    var queues: [String] { lock.withLock { Array(queueNames) } }

    /// Ask every loop to shut down gracefully (each checks from its own thread).
    func requestStop() { lock.withLock { stop = true } }
    var stopRequested: Bool { lock.withLock { stop } }
}
