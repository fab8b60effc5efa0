import Foundation
import Logging

/// The frontend's loops: loop 0 on the thread that calls `run()`, the others
/// each on a thread of its own with its own Redis connections, all accepting on
/// one port through SO_REUSEPORT. Nothing but `FrontendShared` crosses threads.
///
///     let loops = try FrontendLoops(count: 2, endpoint: ep, settings: settings, logger: log)
///     let port = try loops.start(host: "0.0.0.0", port: 8000)
///     loops.run()  // until requestStop() (graceful) or requestStopNow(), from any thread
public final class FrontendLoops: @unchecked Sendable {
    public let count: Int
    private let endpoint: RedisEndpoint
    private let redisOptions: AsyncRedis.Options
    private let settings: FrontendApp.Settings
    private let logger: Logger
    private let shared: FrontendShared
    private let main: LoopParts
    /// Signalled once by each other loop when its thread ends.
    private let finished = DispatchSemaphore(value: 0)
    /// Threads started (loops beyond 0 that are running or have run).
    private var started = 0
    /// How often each loop looks for a stop request.
    static let stopPollMs: UInt64 = 50

    /// One loop's pieces, built on the thread that runs it.
    struct LoopParts {
        let loop: EventLoop
        let redis: AsyncRedis
        let subscriber: AsyncRedis
        let app: FrontendApp

        init(
            index: Int, endpoint: RedisEndpoint, redisOptions: AsyncRedis.Options, settings: FrontendApp.Settings,
            logger: Logger, shared: FrontendShared
        ) throws {
            loop = try EventLoop()
            redis = AsyncRedis(loop: loop, endpoint: endpoint, role: "commands", options: redisOptions, logger: logger)
            subscriber = AsyncRedis(
                loop: loop, endpoint: endpoint, role: "pub/sub", options: redisOptions, logger: logger)
            app = FrontendApp(
                loop: loop, redis: redis, subscriber: subscriber, settings: settings, logger: logger, shared: shared,
                loopIndex: index)
        }

        func startRedis() {
            redis.start()
            subscriber.start()
            app.startResultWatch()
        }
    }

    /// `redisOptions` are every loop's Redis connections' timeouts and keepalive.
    public init(
        count: Int, endpoint: RedisEndpoint, redisOptions: AsyncRedis.Options = AsyncRedis.Options(),
        settings: FrontendApp.Settings, logger: Logger
    ) throws {
        self.count = max(1, count)
        self.endpoint = endpoint
        self.redisOptions = redisOptions
        self.settings = settings
        self.logger = logger
        shared = FrontendShared(loops: self.count)
        main = try LoopParts(
            index: 0, endpoint: endpoint, redisOptions: redisOptions, settings: settings, logger: logger, shared: shared
        )
    }

    /// Totals over the loops (WebSockets, broker state).
    public var totals: FrontendShared { shared }

    /// Bind every loop to host:port (0 picks one) and connect them to Redis; returns the port.
    public func start(host: String, port: Int) throws -> Int {
        let bound = try main.app.listen(host: host, port: port, reusePort: count > 1)
        main.startRedis()
        for index in 1..<count {
            try startThread(index: index, host: host, port: bound)
        }
        return bound
    }

    /// Start loop `index` on its own thread; returns once it listens (or throws its error).
    private func startThread(index: Int, host: String, port: Int) throws {
        let ready = DispatchSemaphore(value: 0)
        let outcome = LockedBox<(any Error)?>(nil)
        let (endpoint, redisOptions, settings, logger, shared, finished) = (
            endpoint, redisOptions, settings, logger, shared, finished
        )
        let first = UncheckedBox(value: main.app.server)
        let thread = Thread {
            do {
                let parts = try LoopParts(
                    index: index, endpoint: endpoint, redisOptions: redisOptions, settings: settings, logger: logger,
                    shared: shared)
                try parts.app.listen(host: host, port: port, reusePort: true, countingWith: first.value)
                parts.startRedis()
                ready.signal()
                var stopping = false
                let watch = parts.loop.timer(after: Self.stopPollMs, repeating: true) {
                    guard shared.stopRequested, !stopping else { return }
                    stopping = true
                    parts.app.shutdown { parts.loop.stop() }
                }
                parts.loop.run()
                withExtendedLifetime((parts, watch)) {}
            } catch {
                outcome.set(error)
                ready.signal()
            }
            finished.signal()
        }
        thread.name = "celeris-loop-\(index)"
        thread.start()
        started += 1
        ready.wait()
        if let error = outcome.get() { throw error }
    }

    /// Ask every loop to shut down gracefully: no new connections, WebSockets
    /// closed with 1001, requests in flight answered. Any thread.
    public func requestStop() { shared.requestStop() }

    /// Ask loop 0 to stop at once (its requests in flight are not waited for). Any thread.
    public func requestStopNow() { shared.requestStopNow() }

    /// Run loop 0 until a stop request; after a graceful one, wait (bounded) for
    /// every other loop to finish its own.
    public func run() {
        var stopping = false
        let loop = main.loop
        let app = main.app
        let shared = shared
        let watch = loop.timer(after: Self.stopPollMs, repeating: true) {
            if shared.stopNowRequested { return loop.stop() }
            guard shared.stopRequested, !stopping else { return }
            stopping = true
            app.shutdown { loop.stop() }
        }
        loop.run()
        watch.cancel()
        if stopping || shared.stopRequested {
            // Each other loop finishes its own graceful shutdown (bounded by its limit).
            let limit = Double(settings.shutdownLimitMs) / 1000 + 1
            for _ in 0..<started { _ = finished.wait(timeout: .now() + limit) }
        }
    }
}

/// Loop 0's server, handed to the other loops only for `countConnections(with:)`
/// (a C pointer they keep; loop 0 outlives them).
private struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
}
