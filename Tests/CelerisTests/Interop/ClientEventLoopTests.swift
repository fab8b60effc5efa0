import FastCore
import Foundation
import NIOCore
import NIOPosix
import XCTest

/// Code isolated to a SwiftNIO event loop (the loop is its executor), as a NIO, Hummingbird
/// or Vapor handler's code is.
private actor OnLoop {
    nonisolated let unownedExecutor: UnownedSerialExecutor

    init(_ loop: any NIOCore.EventLoop) { unownedExecutor = loop.executor.asUnownedSerialExecutor() }

    /// Start `count` sends+awaits of `add(i, 1)`, each a task on the loop; returns how many came back right.
    func roundTrips(_ count: Int, client: CelerisClient) async throws -> Int {
        var tasks: [Task<Bool, Error>] = []
        tasks.reserveCapacity(count)
        for i in 0..<count {
            // Starting 10,000 tasks is the test's own work on the loop: let the timer in between.
            if i % 500 == 0 { await Task.yield() }
            tasks.append(
                Task {
                    let sum = try await client.send("add", args: [.int(Int64(i)), 1]).get(timeout: .seconds(120))
                    return sum == .int(Int64(i + 1))
                })
        }
        var right = 0
        for t in tasks where try await t.value { right += 1 }
        return right
    }
}

/// Ticks of a 1 ms repeated task on a loop: how many, and the longest gap between two.
private final class Ticks: Sendable {
    private let state = LockedBox<(count: Int, last: NIODeadline?, longest: TimeAmount)>((0, nil, .zero))
    private let task: RepeatedTask

    init(on loop: any NIOCore.EventLoop) {
        let state = self.state
        task = loop.scheduleRepeatedTask(initialDelay: .milliseconds(1), delay: .milliseconds(1)) { _ in
            let now = NIODeadline.now()
            state.modify { t in
                if let last = t.last { t.longest = max(t.longest, now - last) }
                t.last = now
                t.count += 1
            }
        }
    }

    func stop() -> (count: Int, longest: TimeAmount) {
        task.cancel()
        let s = state.get()
        return (s.count, s.longest)
    }
}

/// The client does not block a SwiftNIO event loop it is used from.
final class ClientEventLoopTests: XCTestCase {
    /// 10,000 sends and awaits in flight from code on a one-thread `MultiThreadedEventLoopGroup`,
    /// while a timer on the same loop every 1 ms keeps firing and every result arrives. The
    /// longest gap between ticks stays under 250 ms beyond what an idle control loop in the same
    /// process sees at the same time (the machine's own scheduling delays: 2 shared cores). A
    /// client that waited on the loop for each result would stall it for 500 round trips a turn.
    func testTenThousandRoundTripsDoNotStallTheLoop() async throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let worker = InProcessWorker(redis: redis, concurrency: 2, prefetch: 64)
        defer { worker.stop() }
        let client = try CelerisClient(broker: redis.url)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let control = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()

        let ticks = Ticks(on: loop)
        let idle = Ticks(on: control.next())
        let start = ContinuousClock.now
        let right = try await OnLoop(loop).roundTrips(10_000, client: client)
        let took = ContinuousClock.now - start
        let seen = ticks.stop()
        let baseline = idle.stop()
        XCTAssertEqual(right, 10_000, "every result arrived, each the right sum")
        XCTAssertGreaterThan(seen.count, 0)
        let ms = { (t: TimeAmount) in t.nanoseconds / 1_000_000 }
        XCTAssertLessThan(
            seen.longest, baseline.longest + .milliseconds(250),
            "longest gap between 1 ms ticks: \(ms(seen.longest)) ms (idle control loop: \(ms(baseline.longest)) ms)")
        print(
            "10,000 round trips from a NIO loop in \(took); \(seen.count) ticks, longest gap \(ms(seen.longest)) ms"
                + " (idle control loop: \(baseline.count) ticks, longest gap \(ms(baseline.longest)) ms)")
        await client.close()
        try await group.shutdownGracefully()
        try await control.shutdownGracefully()
    }
}
