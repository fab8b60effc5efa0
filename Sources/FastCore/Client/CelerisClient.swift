import Foundation
import Logging
import Synchronization

/// Sends tasks and awaits their results from any Swift app, as Celery 5.7's client does
/// (a Python worker runs what it sends, a Python client awaits what it sends). It never
/// blocks the caller's thread, so it is safe inside a SwiftNIO event loop or a
/// Hummingbird/Vapor handler: the client owns a libevent loop on a thread of its own
/// with its Redis connections (commands to the broker, commands to the backend, one
/// subscriber for results); calls are handed to that thread and resumed from it.
/// Results are awaited through the backend's pub/sub channel (SUBSCRIBE, then GET), never
/// by polling. Connections come back by themselves after Redis restarts; a command made
/// while Redis is unreachable waits for it up to `connectTimeout`.
///
///     let client = try CelerisClient.shared(broker: "redis://127.0.0.1:6379/0")
///     let handle = try await client.send("add", args: [2, 3])
///     let sum = try await handle.get(timeout: .seconds(10))   // JSON 5
public final class CelerisClient: Sendable {
    let core: ClientCore
    private let loop: ClientLoop
    private let routes: TaskRoutes
    private let tokens = Atomic<UInt64>(0)
    private let clock = Atomic<UInt64>(0)
    private let isClosed = Atomic<Bool>(false)
    private static let pool = LockedBox<[String: CelerisClient]>([:])

    /// A client with its own connections (prefer `shared(broker:)`: one per process per URL).
    /// `backend` defaults to the broker's URL; `routes` pick a queue by task name when
    /// `SendOptions.queue` is nil; `connectTimeout` bounds how long a command waits for
    /// an unreachable Redis.
    ///
    ///     let client = try CelerisClient(broker: "redis://10.0.0.5:6379/0")
    public init(
        broker: String = "redis://127.0.0.1:6379/0", backend: String? = nil, routes: TaskRoutes = TaskRoutes(),
        connectTimeout: Double = 10, logger: Logger = Logger(label: "celeris.client")
    ) throws {
        let brokerEndpoint = try RedisEndpoint(url: broker)
        let backendEndpoint = try backend.map { try RedisEndpoint(url: $0) } ?? brokerEndpoint
        self.routes = routes
        loop = try ClientLoop(name: "celeris-client")
        core = ClientCore(
            loop: loop.loop, broker: brokerEndpoint, backend: backendEndpoint, connectTimeout: connectTimeout,
            logger: logger)
        core.subscriber.connectTimeoutMs = UInt64(clamping: Int((max(0.001, connectTimeout) * 1000).rounded(.up)))
        loop.submit { [core] in core.start() }
    }

    /// The process's client for `broker` (results in the same Redis), made on first use.
    ///
    ///     let client = try CelerisClient.shared(broker: "redis://127.0.0.1:6379/0")
    public static func shared(broker: String) throws -> CelerisClient {
        try pool.modify { clients in
            if let c = clients[broker], !c.isClosed.load(ordering: .acquiring) { return c }
            let c = try CelerisClient(broker: broker)
            clients[broker] = c
            return c
        }
    }

    /// Send task `name` with Celery's positional and keyword arguments.
    ///
    ///     let h = try await client.send("add", args: [2, 3], options: SendOptions(queue: "math"))
    public func send(
        _ name: String, args: [JSON] = [], kwargs: [(key: String, value: JSON)] = [],
        options: SendOptions = SendOptions()
    ) async throws -> TaskHandle<JSON> {
        let message = try message(name, args: args, kwargs: kwargs, options: options)
        try await push(message, options)
        return TaskHandle(id: message.id, client: self, decode: { $0 })
    }

    /// Send a typed task (`CelerisTask` or `TaskReference`): its arguments as Celery's
    /// `args`/`kwargs` (`TypedArguments.encode`), its result decoded as `T.Output`.
    ///
    ///     let add = TaskReference<AddArguments, Int>("add")
    ///     let sum: Int = try await client.send(add, AddArguments(x: 2, y: 3)).get(timeout: .seconds(5))
    public func send<T: TypedTask>(_ task: T, _ arguments: T.Arguments, options: SendOptions = SendOptions())
        async throws -> TaskHandle<T.Output>
    {
        let encoded = try TypedArguments.encode(arguments)
        let message = try message(task.name, args: encoded.args, kwargs: encoded.kwargs, options: options)
        try await push(message, options)
        return TaskHandle(id: message.id, client: self, decode: { try TypedResult.decode(T.Output.self, from: $0) })
    }

    /// Send a workflow (chain, group, chord) as Celery 5.7 sends it. The handle is the
    /// workflow's result: its last task's, or the chord body's (a group's: its last
    /// task's). `options.taskId` names that result; the other options are per signature
    /// (`Signature.options`, e.g. `"queue"`).
    ///
    ///     let flow = Canvas.chain([.task(Signature("add", args: [1, 2])), .task(Signature("add", args: [3]))])
    ///     let six = try await client.send(flow).get(timeout: .seconds(10))
    public func send(_ canvas: Canvas, options: SendOptions = SendOptions()) async throws -> TaskHandle<JSON> {
        let flow = options.taskId.map { canvas.withResultId($0) } ?? canvas
        let (commands, resultId) = flow.sendCommands(routes: routes)
        try await run(commands)
        return TaskHandle(id: resultId, client: self, decode: { $0 })
    }

    /// Whether the broker connection is up right now (for a health check; calls made while
    /// it is down wait for it, up to `connectTimeout`).
    ///
    ///     let healthy = await client.isConnected()
    public func isConnected() async -> Bool {
        guard !isClosed.load(ordering: .acquiring) else { return false }
        return await withCheckedContinuation { (done: CheckedContinuation<Bool, Never>) in
            let queued = loop.submit { [core] in done.resume(returning: core.broker.isConnected) }
            if !queued { done.resume(returning: false) }
        }
    }

    /// The handle of a task sent before, by anyone (Celery's `AsyncResult(id)`).
    ///
    ///     let status = try await client.handle(for: id).status(timeout: .seconds(5))
    public func handle(for taskId: String) -> TaskHandle<JSON> {
        TaskHandle(id: taskId, client: self, decode: { $0 })
    }

    /// Revoke a task as `celery.control.revoke(id, terminate=…, signal=…)` does: a
    /// broadcast every worker (Celeris or Python) acts on: a task not started yet is
    /// dropped (REVOKED); with `terminate`, a running one is stopped.
    ///
    ///     try await client.revoke(handle.id, terminate: true)
    public func revoke(_ taskId: String, terminate: Bool = false, signal: String = "SIGTERM") async throws {
        let tick = clock.add(1, ordering: .relaxed).newValue
        let command = ControlBroadcast.revoke(
            taskId, terminate: terminate, signal: signal, db: core.brokerEndpoint.db, clock: Int(tick),
            now: CeleryTime.now())
        try await run([command])
    }

    /// Fail every pending call with `CelerisClientError.closed` and stop the client's loop.
    public func close() async {
        guard !isClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let queued = loop.submit { [core] in
                core.close()
                done.resume()
            }
            if !queued { done.resume() }
        }
        // The connections are closed; the core goes on the loop's thread once it stopped.
        loop.stop(keeping: core)
        Self.pool.modify { clients in
            for (url, c) in clients where c === self { clients.removeValue(forKey: url) }
        }
    }

    /// A client dropped without `close()` closes: pending calls fail, its loop stops.
    deinit {
        guard !isClosed.load(ordering: .acquiring) else { return }
        loop.submit { [core] in core.close() }
        loop.stop(keeping: core)
    }

    // MARK: internals

    private func message(_ name: String, args: [JSON], kwargs: [(key: String, value: JSON)], options: SendOptions)
        throws -> TaskMessage
    {
        guard !name.isEmpty else { throw CelerisClientError.invalidOption("the task name is empty") }
        do {
            return try options.message(task: name, args: args, kwargs: kwargs, routes: routes, now: CeleryTime.now())
        } catch {
            throw CelerisClientError.invalidOption(error.reason)
        }
    }

    private func push(_ message: TaskMessage, _ options: SendOptions) async throws {
        guard !isClosed.load(ordering: .acquiring) else { throw CelerisClientError.closed }
        let expiration = options.expiration(now: CeleryTime.now())
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, Error>) in
            let queued = loop.submit { [core] in
                core.send(message, expiration: expiration) { error in
                    if let error { done.resume(throwing: error) } else { done.resume() }
                }
            }
            if !queued { done.resume(throwing: CelerisClientError.closed) }
        }
    }

    private func run(_ commands: [[String]]) async throws {
        guard !isClosed.load(ordering: .acquiring) else { throw CelerisClientError.closed }
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, Error>) in
            let queued = loop.submit { [core] in
                core.run(commands, on: core.broker) { result in
                    if case .failure(let e) = result { done.resume(throwing: e) } else { done.resume() }
                }
            }
            if !queued { done.resume(throwing: CelerisClientError.closed) }
        }
    }

    /// Task `id`'s final state, awaited through its result channel.
    func finalStatus(of id: String, timeout: Duration) async throws -> TaskStatus {
        guard !isClosed.load(ordering: .acquiring) else { throw CelerisClientError.closed }
        let token = tokens.add(1, ordering: .relaxed).newValue
        let deadline = ContinuousClock.now + timeout
        // Set before the cancel job is queued: a wait that has not started when the task is
        // cancelled (onCancel runs first) sees it and ends at once; one already started is
        // ended by the cancel job, queued after it.
        let cancelled = LockedBox(false)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (done: CheckedContinuation<TaskStatus, Error>) in
                let queued = loop.submit { [core] in
                    if cancelled.get() { return done.resume(throwing: CancellationError()) }
                    core.awaitFinal(id, token: token, timeout: timeout, deadline: deadline) { done.resume(with: $0) }
                }
                if !queued { done.resume(throwing: CelerisClientError.closed) }
            }
        } onCancel: {
            cancelled.set(true)
            loop.submit { [core] in core.cancel(token: token) }
        }
    }

    /// Watch task `id`'s states on the loop (for `TaskStates`); returns the token to stop with.
    func watchStates(of id: String, _ onEvent: @escaping @Sendable (ClientCore.ResultEvent) -> Void) -> UInt64 {
        let token = tokens.add(1, ordering: .relaxed).newValue
        let queued =
            !isClosed.load(ordering: .acquiring) && loop.submit { [core] in core.watch(id, token: token, onEvent) }
        if !queued { onEvent(.failed(.closed)) }
        return token
    }

    func unwatch(_ id: String, token: UInt64) {
        loop.submit { [core] in core.unwatch(id, token: token) }
    }
}
