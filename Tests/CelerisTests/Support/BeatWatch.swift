import FastCore
import Foundation

/// A background poller of one entry's hash and the leader key (every `interval` s, its own
/// connection), recording each change with the test's clock, so a test sees every count and
/// due time an entry went through while the schedulers run.
///
///     let watch = try BeatWatch(redis: redis, entry: "tick")
///     …
///     let seen = watch.stop()
final class BeatWatch: @unchecked Sendable {
    /// The state at one moment.
    struct Observation: Sendable, Equatable {
        var at: Date
        var leader: String?
        var count: Int64
        var due: Int64?
        var sentAt: Int64?

        func sameState(as other: Observation) -> Bool {
            leader == other.leader && count == other.count && due == other.due && sentAt == other.sentAt
        }
    }

    private let seen = LockedBox<[Observation]>([])
    private let stopped = LockedBox(false)
    private let failure = LockedBox<String?>(nil)
    private let finished = DispatchSemaphore(value: 0)

    init(redis: RedisServer, entry: String, interval: Double = 0.005) throws {
        let endpoint = redis.endpoint
        let thread = Thread { [self] in
            defer { finished.signal() }
            do {
                let client = try RedisConnection(endpoint: endpoint)
                while !stopped.get() {
                    let replies = try client.pipeline([
                        ["GET", BeatProcess.leaderKey],
                        ["HMGET", BeatProcess.entryKey(entry), "count", "due", "sent_at"],
                    ])
                    let fields = replies[1].elements?.map { $0.text.flatMap { Int64($0) } } ?? []
                    let o = Observation(
                        at: Date(), leader: replies[0].text, count: fields.first.flatMap { $0 } ?? 0,
                        due: fields.count > 1 ? fields[1] : nil, sentAt: fields.count > 2 ? fields[2] : nil)
                    seen.modify { list in
                        if list.last.map({ !$0.sameState(as: o) }) ?? true { list.append(o) }
                    }
                    Thread.sleep(forTimeInterval: interval)
                }
            } catch {
                failure.set("watch of \(entry) failed: \(error)")
            }
        }
        thread.name = "beat-watch"
        thread.start()
    }

    /// The observations so far.
    var observations: [Observation] { seen.get() }

    /// Stop polling; every observation, in order. Throws if polling failed.
    func stop() throws -> [Observation] {
        if !stopped.exchange(true) { finished.wait() }
        if let f = failure.get() { throw TestFailure(f) }
        return seen.get()
    }
}
