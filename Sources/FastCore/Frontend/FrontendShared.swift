/// What the frontend's loops share: totals for `/health` and `/metrics`, the
/// queues requests went to, and the requests to stop. Each loop writes its own
/// slot; reads sum them.
///
///     let shared = FrontendShared(loops: 2)
///     shared.setWebSockets(loop: 1, 40)
///     shared.webSockets  // 40 plus loop 0's
public final class FrontendShared: Sendable {
    private struct State {
        var webSocketsByLoop: [Int]
        var pendingByLoop: [Int]
        var brokerUpByLoop: [Bool]
        var queueNames: Set<String> = ["celery"]
        var stop = false
        var stopNow = false
    }

    private let state: LockedBox<State>
    public let loops: Int
    /// `GET /stats`: the history ring, the workers inspected, when /stats was last read.
    public let stats = StatsBoard()

    public init(loops: Int) {
        let n = max(1, loops)
        self.loops = n
        state = LockedBox(
            State(
                webSocketsByLoop: Array(repeating: 0, count: n), pendingByLoop: Array(repeating: 0, count: n),
                brokerUpByLoop: Array(repeating: false, count: n)))
    }

    public func setWebSockets(loop: Int, _ n: Int) {
        state.modify { if $0.webSocketsByLoop.indices.contains(loop) { $0.webSocketsByLoop[loop] = n } }
    }
    public func setRedisPending(loop: Int, _ n: Int) {
        state.modify { if $0.pendingByLoop.indices.contains(loop) { $0.pendingByLoop[loop] = n } }
    }
    public func setBrokerUp(loop: Int, _ up: Bool) {
        state.modify { if $0.brokerUpByLoop.indices.contains(loop) { $0.brokerUpByLoop[loop] = up } }
    }
    public func addQueue(_ name: String) { state.modify { _ = $0.queueNames.insert(name) } }

    /// Open WebSockets on every loop.
    public var webSockets: Int { state.modify { $0.webSocketsByLoop.reduce(0, +) } }
    /// Redis commands awaiting replies on every loop's connection.
    public var redisPending: Int { state.modify { $0.pendingByLoop.reduce(0, +) } }
    /// Every loop's Redis connections are up.
    public var brokerUp: Bool { state.modify { $0.brokerUpByLoop.allSatisfy { $0 } } }
    public var queues: [String] { state.modify { Array($0.queueNames) } }

    /// Ask every loop to shut down gracefully (each checks from its own thread).
    public func requestStop() { state.modify { $0.stop = true } }
    public var stopRequested: Bool { state.modify { $0.stop } }

    /// Ask loop 0 to stop at once (a second signal), without waiting for requests in flight.
    public func requestStopNow() {
        state.modify {
            $0.stop = true
            $0.stopNow = true
        }
    }
    public var stopNowRequested: Bool { state.modify { $0.stopNow } }
}
