import FastCore
import Foundation
import Logging

/// The frontend's loops: loop 0 on the main thread (signals, gauges), the others
/// each on a thread of its own with its own Redis connections, all accepting on
/// one port through SO_REUSEPORT. Nothing but `FrontendShared` crosses threads.
///
///     let loops = FrontendLoops(count: 2, endpoint: ep, settings: settings, logger: log)
///     let port = try loops.start(host: "0.0.0.0", port: 8000)
///     loops.run()  // until SIGINT/SIGTERM, then a graceful shutdown of every loop
final class FrontendLoops {
    let count: Int
    private let endpoint: RedisEndpoint
    private let settings: FrontendApp.Settings
    private let logger: Logger
    private let shared: FrontendShared
    private let main: LoopParts
    /// Signalled once by each other loop when its thread ends.
    private let finished = DispatchSemaphore(value: 0)

    /// One loop's pieces, built on the thread that runs it.
    struct LoopParts {
        let loop: EventLoop
        let redis: AsyncRedis
        let subscriber: AsyncRedis
        let app: FrontendApp

        init(
            index: Int, endpoint: RedisEndpoint, settings: FrontendApp.Settings, logger: Logger, shared: FrontendShared
        )
            throws
        {
            loop = try EventLoop()
            redis = AsyncRedis(loop: loop, endpoint: endpoint, role: "commands", logger: logger)
            subscriber = AsyncRedis(loop: loop, endpoint: endpoint, role: "pub/sub", logger: logger)
            app = FrontendApp(
                loop: loop, redis: redis, subscriber: subscriber, settings: settings, logger: logger, shared: shared,
                loopIndex: index)
        }

        func startRedis() {
            redis.start()
            subscriber.start()
        }
    }

    init(count: Int, endpoint: RedisEndpoint, settings: FrontendApp.Settings, logger: Logger) throws {
        self.count = max(1, count)
        self.endpoint = endpoint
        self.settings = settings
        self.logger = logger
        shared = FrontendShared(loops: self.count)
        main = try LoopParts(index: 0, endpoint: endpoint, settings: settings, logger: logger, shared: shared)
    }

    /// Bind every loop to host:port (0 picks one) and connect them to Redis; returns the port.
    func start(host: String, port: Int) throws -> Int {
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
        let outcome = ThreadOutcome()
        let (endpoint, settings, logger, shared, finished) = (endpoint, settings, logger, shared, finished)
        let first = UncheckedBox(value: main.app.server)
        let thread = Thread {
            do {
                let parts = try LoopParts(
                    index: index, endpoint: endpoint, settings: settings, logger: logger, shared: shared)
                try parts.app.listen(host: host, port: port, reusePort: true, countingWith: first.value)
                parts.startRedis()
                ready.signal()
                var stopping = false
                let watch = parts.loop.timer(after: 50, repeating: true) {
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
        ready.wait()
        if let error = outcome.error { throw error }
    }

    /// Run loop 0 until a signal; the first SIGINT/SIGTERM shuts every loop down
    /// gracefully, a second one stops at once.
    func run() {
        var stopping = false
        let loop = main.loop
        for signo in [SIGINT, SIGTERM] {
            loop.onSignal(signo) { [self] _ in
                guard !stopping else { return loop.stop() }  // a second signal: now
                stopping = true
                logger.info(
                    "shutting down: no new connections, WebSockets closed with 1001, finishing requests in flight")
                shared.requestStop()
                main.app.shutdown { loop.stop() }
            }
        }
        loop.run()
        if stopping {
            // Each other loop finishes its own graceful shutdown (bounded by its 5 s limit).
            for _ in 1..<count { _ = finished.wait(timeout: .now() + 6) }
        }
    }
}

/// An error handed from a loop thread to the thread that started it.
private final class ThreadOutcome: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Error?
    func set(_ e: Error) { lock.withLock { stored = e } }
    var error: Error? { lock.withLock { stored } }
}

/// Loop 0's server, handed to the other loops only for `countConnections(with:)`
/// (a C pointer they keep; loop 0 outlives them).
private struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
}
