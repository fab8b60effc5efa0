import Foundation
import Logging

/// What a `CelerisClient` does on its loop's thread (and only there): the broker and
/// backend command connections (`AsyncRedis`, the same one when both URLs are equal),
/// the result subscriber, commands held while Redis is unreachable, and the watchers of
/// result keys. Every method runs on the loop (`ClientLoop.submit`).
final class ClientCore: @unchecked Sendable {
    /// A result key's news for one watcher: a record (stored or published), nothing
    /// stored yet, or a failure to read it.
    enum ResultEvent: Sendable {
        case record([UInt8])
        case missing
        case failed(CelerisClientError)
    }

    private struct Watcher {
        var needsRead = true
        var gate = ReadGate()
        let onEvent: (ResultEvent) -> Void
    }

    private struct Held {
        let deadline: Double
        let run: () -> Void
        let fail: (CelerisClientError) -> Void
    }

    let loop: EventLoop
    let brokerEndpoint: RedisEndpoint
    let broker: AsyncRedis
    let backend: AsyncRedis
    let subscriber: ResultSubscriber
    private let logger: Logger
    private var producer = TaskProducer()
    /// Commands waiting for a connection, per connection (broker first).
    private var heldForBroker: [Held] = []
    private var heldForBackend: [Held] = []
    private var sweepTimer: LoopTimer?
    private var watchers: [String: [UInt64: Watcher]] = [:]
    /// Per awaited task id: what ends the wait (a timeout, a cancellation).
    private var finishers: [UInt64: (Error) -> Void] = [:]
    private var timers: [UInt64: LoopTimer] = [:]
    private var closed = false
    /// How long a command waits for an unreachable Redis before it fails.
    let connectTimeout: Double

    init(loop: EventLoop, broker: RedisEndpoint, backend: RedisEndpoint, connectTimeout: Double, logger: Logger) {
        self.loop = loop
        self.logger = logger
        self.connectTimeout = connectTimeout
        brokerEndpoint = broker
        let options = AsyncRedis.Options(commandTimeoutMs: 10_000, keepAliveSeconds: 15, heartbeatMs: 2000)
        self.broker = AsyncRedis(loop: loop, endpoint: broker, role: "client", options: options, logger: logger)
        self.backend =
            backend == broker
            ? self.broker
            : AsyncRedis(loop: loop, endpoint: backend, role: "client backend", options: options, logger: logger)
        subscriber = ResultSubscriber(loop: loop, endpoint: backend, logger: logger)
    }

    /// Connect everything (on the loop).
    func start() {
        broker.onStateChange = { [weak self] up in
            guard let self else { return }
            if up {
                self.producer.reset()  // a Redis that may be new: declare queues again
                self.flush(&self.heldForBroker)
            }
            if up && self.backend === self.broker { self.flush(&self.heldForBackend) }
        }
        if backend !== broker {
            backend.onStateChange = { [weak self] up in
                guard let self, up else { return }
                self.flush(&self.heldForBackend)
            }
            backend.start()
        }
        broker.start()
        subscriber.onConfirmed = { [weak self] channel in self?.confirmed(channel) }
        subscriber.onMessage = { [weak self] channel, payload in self?.published(channel, payload) }
        subscriber.onDown = { [weak self] in
            guard let self else { return }
            for (id, group) in self.watchers {
                for token in group.keys { self.watchers[id]?[token]?.needsRead = true }
            }
        }
        subscriber.start()
        sweepTimer = loop.timer(after: 250, repeating: true) { [weak self] in self?.sweepHeld() }
    }

    // MARK: commands

    /// Send a task: the queue's bindings the first time, then its LPUSH. `expiration`:
    /// the `expiration` property Celery adds when a task expires (milliseconds, as text).
    func send(_ message: TaskMessage, expiration: String?, _ done: @escaping (CelerisClientError?) -> Void) {
        let envelope = message.envelope(expiration: expiration)
        let commands =
            producer.declareCommands(queue: message.queue) + [
                ["LPUSH", QueueKeys.listKey(queue: message.queue, priority: message.priority), envelope]
            ]
        run(commands, on: broker) { result in
            if case .failure(let e) = result { done(e) } else { done(nil) }
        }
    }

    /// Run `commands` in order on `connection` (held until it is up, at most
    /// `connectTimeout`); `done` gets the last reply, or the first error.
    func run(
        _ commands: [[String]], on connection: AsyncRedis,
        _ done: @escaping (Result<RedisValue, CelerisClientError>) -> Void
    ) {
        guard !closed else { return done(.failure(.closed)) }
        guard !commands.isEmpty else { return done(.success(.null)) }
        guard connection.isConnected else {
            let held = Held(
                deadline: CeleryTime.now() + connectTimeout,
                run: { [weak self] in self?.run(commands, on: connection, done) },
                fail: { done(.failure($0)) })
            if connection === broker { heldForBroker.append(held) } else { heldForBackend.append(held) }
            return
        }
        var remaining = commands.count
        var failure: CelerisClientError?
        var finished = false
        for command in commands {
            let sent = connection.send(command) { reply in
                remaining -= 1
                if failure == nil {
                    if let reply {
                        if let e = reply.errorMessage { failure = .redis(e) }
                    } else {
                        failure = self.closed ? .closed : .connectionLost("\(connection.endpoint)")
                    }
                }
                guard remaining == 0, !finished else { return }
                finished = true
                if let failure { done(.failure(failure)) } else { done(.success(reply ?? .null)) }
            }
            if !sent {
                // The link dropped between two commands of the batch: what was sent may land.
                remaining -= 1
                if failure == nil { failure = .connectionLost("\(connection.endpoint)") }
                if remaining == 0, !finished {
                    finished = true
                    done(.failure(failure ?? .connectionLost("\(connection.endpoint)")))
                }
            }
        }
    }

    private func flush(_ held: inout [Held]) {
        let batch = held
        held.removeAll()
        for h in batch { h.run() }
    }

    private func sweepHeld() {
        guard !heldForBroker.isEmpty || !heldForBackend.isEmpty else { return }
        let now = CeleryTime.now()
        func expire(_ held: inout [Held], _ endpoint: RedisEndpoint, _ connection: AsyncRedis) {
            guard held.contains(where: { $0.deadline <= now }) else { return }
            let late = held.filter { $0.deadline <= now }
            held.removeAll { $0.deadline <= now }
            for h in late { h.fail(.notConnected(why(endpoint, connection))) }
        }
        func why(_ endpoint: RedisEndpoint, _ connection: AsyncRedis) -> String {
            "\(endpoint) within \(connectTimeout) s" + (connection.lastError.map { " (\($0))" } ?? "")
        }
        expire(&heldForBroker, broker.endpoint, broker)
        expire(&heldForBackend, backend.endpoint, backend)
    }

    // MARK: results

    /// Watch task `id`'s result: `onEvent` gets the stored record (or `.missing`) once the
    /// subscription is confirmed, then every published record, until `unwatch`.
    func watch(_ id: String, token: UInt64, _ onEvent: @escaping (ResultEvent) -> Void) {
        guard !closed else { return onEvent(.failed(.closed)) }
        watchers[id, default: [:]][token] = Watcher(onEvent: onEvent)
        subscriber.subscribe(ResultRecord.key(id))
    }

    func unwatch(_ id: String, token: UInt64) {
        guard watchers[id]?.removeValue(forKey: token) != nil else { return }
        if watchers[id]?.isEmpty ?? false {
            watchers.removeValue(forKey: id)
            subscriber.release(ResultRecord.key(id))
        }
    }

    /// The subscription to a result channel is in place: read the key for the watchers
    /// that have not read it since (an update published before the subscription is in it).
    private func confirmed(_ channel: String) {
        guard channel.hasPrefix(ResultRecord.keyPrefix) else { return }
        let id = String(channel.dropFirst(ResultRecord.keyPrefix.count))
        guard let group = watchers[id] else { return }
        let readers = group.filter(\.value.needsRead).map(\.key)
        guard !readers.isEmpty else { return }
        for token in readers {
            watchers[id]?[token]?.needsRead = false
            watchers[id]?[token]?.gate.readStarted()
        }
        run([["GET", channel]], on: backend) { [weak self] result in
            guard let self else { return }
            for token in readers {
                // A record published while the GET was under way is at least as new as the
                // stored one: the stored one (or its absence) is not news any more.
                guard self.watchers[id]?[token]?.gate.readFinished() ?? false,
                    let w = self.watchers[id]?[token]
                else { continue }
                switch result {
                case .success(let value):
                    if let bytes = value.bytes { w.onEvent(.record(bytes)) } else { w.onEvent(.missing) }
                case .failure(let e):
                    w.onEvent(.failed(e))
                }
            }
        }
    }

    private func published(_ channel: String, _ payload: [UInt8]) {
        guard channel.hasPrefix(ResultRecord.keyPrefix) else { return }
        let id = String(channel.dropFirst(ResultRecord.keyPrefix.count))
        guard let group = watchers[id] else { return }
        for token in group.keys { watchers[id]?[token]?.gate.published() }
        for w in group.values { w.onEvent(.record(payload)) }
    }

    /// Await task `id`'s final state (SUCCESS, FAILURE, REVOKED) for at most `timeoutMs`.
    func awaitFinal(
        _ id: String, token: UInt64, timeout: Duration, deadline: ContinuousClock.Instant,
        _ done: @escaping (Result<TaskStatus, Error>) -> Void
    ) {
        var finished = false
        let finish: (Result<TaskStatus, Error>) -> Void = { [weak self] result in
            guard !finished else { return }
            finished = true
            self?.unwatch(id, token: token)
            self?.finishers.removeValue(forKey: token)
            self?.timers.removeValue(forKey: token)?.cancel()
            done(result)
        }
        finishers[token] = { error in finish(.failure(error)) }
        // libevent's timers go by the loop's cached time (they may fire up to a loop turn
        // early): re-armed until the caller's deadline has passed.
        func arm() {
            let (seconds, atto) = (deadline - ContinuousClock.now).components
            let ms =
                seconds < 0 ? 0 : UInt64(clamping: seconds) &* 1000 + UInt64(max(0, atto) / 1_000_000_000_000_000) + 1
            timers[token] = loop.timer(after: ms) { [weak self] in
                if ContinuousClock.now < deadline { return arm() }
                // Results cannot arrive while the subscriber is refused (a wrong password):
                // say so rather than "no result".
                if let self, let refused = self.subscriber.lastError {
                    return finish(
                        .failure(CelerisClientError.notConnected("\(self.subscriber.endpoint) (pub/sub): \(refused)")))
                }
                finish(.failure(CelerisClientError.timedOut(taskId: id, after: timeout)))
            }
        }
        arm()
        watch(id, token: token) { event in
            switch event {
            case .record(let bytes):
                guard let status = TaskStatus(taskId: id, record: bytes) else {
                    return finish(
                        .failure(CelerisClientError.malformedResult(taskId: id, reason: "not a result record")))
                }
                if status.isFinal { finish(.success(status)) }
            case .missing:
                break
            case .failed(let e):
                finish(.failure(e))
            }
        }
    }

    /// End a wait early: its caller's task was cancelled.
    func cancel(token: UInt64) {
        finishers[token]?(CancellationError())
    }

    /// Fail everything pending and close the connections.
    func close() {
        closed = true
        let held = heldForBroker + heldForBackend
        heldForBroker.removeAll()
        heldForBackend.removeAll()
        for h in held { h.fail(.closed) }
        for f in Array(finishers.values) { f(CelerisClientError.closed) }
        for group in watchers.values { for w in group.values { w.onEvent(.failed(.closed)) } }
        watchers.removeAll()
        sweepTimer?.cancel()
        for t in timers.values { t.cancel() }
        timers.removeAll()
        subscriber.close()
        // Replies owed by Redis fail now (their callbacks see `closed`: `.closed`).
        broker.close()
        if backend !== broker { backend.close() }
    }
}

/// Per watcher of a result key: whether the stored record a GET brought back is still
/// news. A record published on the channel while that GET was under way is at least as
/// new as the stored one (every store is published once the subscription is confirmed),
/// so the stored one, arriving after it, would go back in time: it is dropped.
///
///     var gate = ReadGate(); gate.readStarted(); gate.published()
///     gate.readFinished()   // false: drop the GET's record
struct ReadGate: Sendable, Equatable {
    private var reading = false
    private var publishedDuringRead = false

    /// A GET of the key was sent for this watcher.
    mutating func readStarted() {
        reading = true
        publishedDuringRead = false
    }

    /// A record was published on the key's channel (and delivered to the watcher).
    mutating func published() {
        if reading { publishedDuringRead = true }
    }

    /// The GET's reply came: true when it may be delivered.
    mutating func readFinished() -> Bool {
        defer {
            reading = false
            publishedDuringRead = false
        }
        return !publishedDuringRead
    }
}
