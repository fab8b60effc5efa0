import FastCore
import Foundation
import NIOCore
import NIOPosix
import XCTest

/// Code isolated to a SwiftNIO event loop (the loop is its executor), as a NIO, Hummingbird
/// or Vapor handler's code is.
private actor OnLoop {
    nonisolated let unownedExecutor: UnownedSerialExecutor
    private(set) var results = 0

    init(_ loop: any NIOCore.EventLoop) { unownedExecutor = loop.executor.asUnownedSerialExecutor() }

    /// Start `count` sends+awaits of `add(i, 1)`, each a task on the loop; returns when all are back.
    func roundTrips(_ count: Int, client: CelerisClient) async throws -> Int {
        var tasks: [Task<Bool, Error>] = []
        tasks.reserveCapacity(count)
        for i in 0..<count {
            tasks.append(
                Task {
                    let sum = try await client.send("add", args: [.int(Int64(i)), 1]).get(timeout: .seconds(120))
                    self.results += 1
                    return sum == .int(Int64(i + 1))
                })
        }
        var right = 0
        for t in tasks where try await t.value { right += 1 }
        return right
    }
}

/// The client does not block a SwiftNIO event loop it is used from.
final class ClientEventLoopTests: XCTestCase {
    /// 10,000 sends and awaits in flight from code on a one-thread `MultiThreadedEventLoopGroup`,
    /// while a timer on the same loop every 1 ms keeps firing (no gap near 100 ms) and every result arrives.
    func testTenThousandRoundTripsDoNotStallTheLoop() async throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let worker = InProcessWorker(redis: redis, concurrency: 2, prefetch: 64)
        defer { worker.stop() }
        let client = try CelerisClient(broker: redis.url)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()

        // Ticks: counted, and the longest gap between two, on the loop itself.
        let ticks = LockedBox<(count: Int, last: NIODeadline?, longest: TimeAmount)>((0, nil, .zero))
        let timer = loop.scheduleRepeatedTask(initialDelay: .milliseconds(1), delay: .milliseconds(1)) { _ in
            let now = NIODeadline.now()
            ticks.modify { t in
                if let last = t.last { t.longest = max(t.longest, now - last) }
                t.last = now
                t.count += 1
            }
        }
        let onLoop = OnLoop(loop)
        let start = ContinuousClock.now
        let right = try await onLoop.roundTrips(10_000, client: client)
        let took = ContinuousClock.now - start
        timer.cancel()
        let seen = ticks.get()
        XCTAssertEqual(right, 10_000, "every result arrived, each the right sum")
        XCTAssertGreaterThan(seen.count, 0)
        XCTAssertLessThan(
            seen.longest, .milliseconds(100),
            "longest gap between 1 ms ticks: \(seen.longest.nanoseconds / 1_000_000) ms over \(took), \(seen.count) ticks"
        )
        print(
            "10,000 round trips from a NIO loop in \(took); \(seen.count) ticks, longest gap \(seen.longest.nanoseconds / 1000) µs"
        )
        await client.close()
        try await group.shutdownGracefully()
    }
}
