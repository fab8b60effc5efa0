import FastCore
import Foundation
import Logging
import XCTest

/// A consumer on a background thread of the test process, with test-only tasks registered.
final class InProcessWorker {
    let consumer: Consumer
    private let finished = DispatchSemaphore(value: 0)

    init(
        redis: RedisServer, queues: [String] = ["celery"], concurrency: Int = 2, prefetch: Int = 4,
        claimByMove: Bool? = nil, register: (inout TaskRegistry) -> Void = { _ in }
    ) {
        var registry = TaskRegistry()
        BuiltinTasks.register(into: &registry)
        register(&registry)
        var logger = Logger(label: "test-worker")
        logger.logLevel = .critical
        var configuration = WorkerConfiguration(
            endpoint: redis.endpoint, queues: queues, concurrency: concurrency, prefetchMultiplier: prefetch,
            hostname: "celeris@test", stepSeconds: 0)
        // The same tests run over each broker transport: CELERIS_IO=uring|socket|auto, as for the binaries.
        configuration.redisIO = IOMode(rawValue: ProcessInfo.processInfo.environment["CELERIS_IO"] ?? "auto") ?? .auto
        // ... and with each claim: CELERIS_CLAIM=script|move.
        configuration.claimByMove = claimByMove ?? (ProcessInfo.processInfo.environment["CELERIS_CLAIM"] == "move")
        consumer = Consumer(configuration: configuration, registry: registry, logger: logger)
        let c = consumer
        let done = finished
        Thread {
            c.run()
            done.signal()
        }.start()
    }

    /// Warm-stop and wait for the loop to end.
    func stop() {
        consumer.stop()
        XCTAssertEqual(finished.wait(timeout: .now() + 10), .success, "consumer did not stop")
    }
}
