import FastCore
import Foundation
import Logging
import XCTest

/// A consumer on a background thread of the test process, with test-only tasks registered.
///
/// Given a `ManualClock`, the worker judges every time by it (ETA, expires, rate limits,
/// time limits, leases, recovery, idle polls, reconnect pauses): the test moves it with
/// `clock.advance(_:)`, then waits for the Redis state to change. Start it at the real
/// time, `ManualClock(CeleryTime.now())`: the claim script stamps leases with Redis's `TIME`.
/// With the clock held, the loop still turns (its waits are bounded), but an empty queue
/// is claimed from again only when its waker fires (a push to its priority-0 list).
final class InProcessWorker {
    let consumer: Consumer
    /// The clock the worker judges time by.
    var clock: any WallClock { consumer.configuration.clock }
    /// The worker's error-level log messages, for what it keeps no other trace of (a
    /// claim Redis refused while every other command is refused too).
    let errors = LockedBox<[String]>([])
    private let finished = DispatchSemaphore(value: 0)

    init(
        redis: RedisServer, queues: [String] = ["celery"], concurrency: Int = 2, prefetch: Int = 4,
        claimByMove: Bool? = nil, clock: (any WallClock)? = nil, visibilityTimeout: Double? = nil,
        hostname: String = "celeris@test", routes: TaskRoutes = TaskRoutes(), endpoint: RedisEndpoint? = nil,
        register: (inout TaskRegistry) -> Void = { _ in }, configure: (inout WorkerConfiguration) -> Void = { _ in }
    ) {
        var registry = TaskRegistry()
        BuiltinTasks.register(into: &registry)
        register(&registry)
        let errors = self.errors
        var logger = Logger(label: "test-worker") { _ in ErrorRecorder(errors: errors) }
        logger.logLevel = .error
        var configuration = WorkerConfiguration(
            endpoint: endpoint ?? redis.endpoint, queues: queues, concurrency: concurrency, prefetchMultiplier: prefetch,
            hostname: hostname, stepSeconds: 0)
        if let clock { configuration.clock = clock }
        configuration.routes = routes
        if let visibilityTimeout { configuration.visibilityTimeout = visibilityTimeout }
        // The same tests run over each broker transport: CELERIS_IO=uring|socket|auto, as for the binaries.
        configuration.redisIO = IOMode(rawValue: ProcessInfo.processInfo.environment["CELERIS_IO"] ?? "auto") ?? .auto
        // ... and with each claim: CELERIS_CLAIM=script|move.
        configuration.claimByMove = claimByMove ?? (ProcessInfo.processInfo.environment["CELERIS_CLAIM"] == "move")
        configure(&configuration)
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

/// Keeps error-level messages, prints nothing.
private struct ErrorRecorder: LogHandler {
    let errors: LockedBox<[String]>
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .error
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        guard event.level >= .error else { return }
        errors.modify { $0.append(event.message.description) }
    }
}

extension RedisConnection {
    /// The messages held in kombu's `unacked` (claimed, not yet acknowledged), by delivery tag.
    func heldMessages() throws -> [String: TaskMessage] {
        let fields = try command("HGETALL", "unacked").elements ?? []
        var out: [String: TaskMessage] = [:]
        for i in stride(from: 0, to: fields.count - 1, by: 2) {
            let record = try JSONParser.parse(fields[i + 1].bytes ?? [])
            out[fields[i].text ?? ""] = try TaskMessage.decode(Array(try XCTUnwrap(record[0]).serialized().utf8))
        }
        return out
    }

    /// The lease score `unacked_index` holds for a delivery (nil when none).
    func lease(_ tag: String) throws -> Double? { Double(try command("ZSCORE", "unacked_index", tag).text ?? "") }
}
