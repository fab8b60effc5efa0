import Foundation
import Logging

/// Where a WebSocket hub (or a long-poll) gets the states of the tasks it follows:
/// `ResultWatch` in the frontend, a small fake in unit tests.
///
///     let token = source.watch(taskId) { update in send(update.message) }
///     source.unwatch(token!)
public protocol ResultSource: AnyObject {
    /// Follow `taskId`: `onUpdate` gets its current state, then every later one (see `ResultWatch.watch`).
    /// nil when no more tasks can be followed.
    func watch(_ taskId: String, _ onUpdate: @escaping (ResultWatch.Update) -> Void) -> ResultWatch.Token?
    /// Stop following (nothing more reaches that watcher's `onUpdate`).
    func unwatch(_ token: ResultWatch.Token)
}

/// Every state a watched task's result record goes through, for the watchers on one
/// frontend loop, with no window: a task's result channel (`celery-task-meta-<id>`, on which
/// Celeris and Celery workers publish each stored state) is subscribed on a connection of the
/// watch's own, and only once the subscription is confirmed is the key read (the reads of one
/// loop turn batched into MGETs of at most 256 keys). After the read's reply a barrier on the
/// subscriber connection (`ResultSubscriber.barrier`) marks the point by which every message
/// published before the read has arrived: messages held since the confirmation (P) are then
/// delivered after the read's snapshot, or alone when the snapshot is one of them. A watcher
/// skips a state equal (byte for byte) to the last one it got and gets nothing after a final
/// state; after a reconnect every channel is confirmed again and read again under the same rule,
/// so a watcher sees only what changed while the link was down.
///
/// Invariant the rule rests on: every writer of `celery-task-meta-*` stores a state and
/// publishes it atomically (MULTI SETEX PUBLISH EXEC, as Celery's RedisBackend and
/// `ResultRecord.storeCommands` do), so a read never sees a record whose PUBLISH is still to
/// come after the barrier. A writer that pipelines SET and PUBLISH without MULTI could let the
/// read see the new record while its message lands after the barrier: the watcher would get
/// that state once (the dedupe skips the repeat), never miss it, but order rests on MULTI.
///
///     let watch = ResultWatch(loop: loop, redis: redis, endpoint: ep, logger: log)
///     watch.start()
///     let token = watch.watch(id) { update in print(update.message, update.isFinal) }

public final class ResultWatch: ResultSource {
    /// A new state of a watched task, built once and shared by every watcher.
    ///
    ///     ResultWatch.Update(taskId: "t1", record: nil).message  // {"task_id": "t1", "status": "Pending...", "state": "PENDING"}
    public final class Update {
        public let taskId: String
        /// The stored result record's JSON text (nil: no record, PENDING).
        public let record: String?
        /// SUCCESS, FAILURE or REVOKED: no state follows.
        public let isFinal: Bool
        /// The state as `TaskStatusView` names it ("PENDING", "PROGRESS", "SUCCESS", …).
        public let state: String
        /// `{"task_id": …}` followed by `TaskStatusView.render(record:)`'s fields: the WebSocket message.
        public let message: String
        /// The message framed once for every WebSocket client that gets it (set by the hub, on the loop).
        @exclusivity(unchecked) var frame: SharedFrame?

        public init(taskId: String, record: String?) {
            self.taskId = taskId
            self.record = record
            let view = TaskStatusView.render(record: record)
            state = view["state"]?.stringValue ?? "UNKNOWN"
            isFinal = state == "SUCCESS" || state == "FAILURE" || state == "REVOKED"
            message = JSON.object([("task_id", .string(taskId))] + (view.objectPairs ?? [])).serialized()
        }
    }

    /// One watcher, for `unwatch`.
    public struct Token: Hashable, Sendable {
        let id: UInt64
    }

    private enum Phase {
        /// Waiting for the channel's subscription to be confirmed.
        case awaiting
        /// Confirmed: its snapshot read (`session`: the read in flight, nil: not sent yet), messages held.
        case reading(session: Int?, held: [Update])
        /// Snapshot delivered: messages go straight to it.
        case live
    }

    private final class Watcher {
        let token: Token
        let onUpdate: (Update) -> Void
        var phase = Phase.awaiting
        /// The last record delivered (`.some(nil)`: PENDING); nil: nothing yet.
        var last: String??
        var done = false
        var active = true
        init(token: Token, onUpdate: @escaping (Update) -> Void) {
            self.token = token
            self.onUpdate = onUpdate
        }

        var isReadingUnsent: Bool {
            if case .reading(nil, _) = phase { return true }
            return false
        }
    }

    private final class Watched {
        let taskId: String
        let channel: String
        var watchers: [Watcher] = []
        var confirmed = false
        var queued = false
        init(taskId: String) {
            self.taskId = taskId
            channel = ResultRecord.key(taskId)
        }
    }

    /// Most keys one MGET reads.
    static let maxKeysPerRead = 256

    private let loop: EventLoop
    private let redis: AsyncRedis
    let subscriber: ResultSubscriber
    private let logger: Logger
    /// Most tasks watched at once (`watch` returns nil beyond).
    let maxWatchedTasks: Int
    /// Most commands awaiting replies on `redis` before reads wait for the next try.
    private let maxPendingRedis: Int
    // Exclusivity: a watch is used on its loop's thread only: the run-time check is pure cost.
    @exclusivity(unchecked) private var tasks: [String: Watched] = [:]
    @exclusivity(unchecked) private var byToken: [UInt64: (Watched, Watcher)] = [:]
    @exclusivity(unchecked) private var nextToken: UInt64 = 0
    @exclusivity(unchecked) private var nextSession = 0
    @exclusivity(unchecked) private var readQueue: [Watched] = []
    @exclusivity(unchecked) private var flushTimer: LoopTimer?
    @exclusivity(unchecked) private var retryTimer: LoopTimer?
    @exclusivity(unchecked) private var retrying: [Watched] = []
    /// Tests: called with the task ids of a read right before it is sent (the window between
    /// confirmation and read, made real).
    @exclusivity(unchecked) var beforeRead: (([String]) -> Void)?
    /// Reads (MGETs) sent, for tests and numbers.
    @exclusivity(unchecked) private(set) var reads = 0

    init(
        loop: EventLoop, redis: AsyncRedis, endpoint: RedisEndpoint, logger: Logger, maxWatchedTasks: Int = 100_000,
        maxPendingRedis: Int = 10_000
    ) {
        self.loop = loop
        self.redis = redis
        self.logger = logger
        self.maxWatchedTasks = maxWatchedTasks
        self.maxPendingRedis = maxPendingRedis
        subscriber = ResultSubscriber(loop: loop, endpoint: endpoint, logger: logger)
        subscriber.onConfirmed = { [weak self] channel in self?.confirmed(channel) }
        subscriber.onMessage = { [weak self] channel, payload in self?.message(channel, payload) }
        subscriber.onDown = { [weak self] in self?.down() }
    }

    /// Connect the subscriber (reconnecting by itself from then on).
    func start() { subscriber.start() }

    /// Close the subscriber; watchers get nothing more (`FrontendApp.shutdown` calls it).
    func close() {
        subscriber.close()
        flushTimer?.cancel()
        flushTimer = nil
        retryTimer?.cancel()
        retryTimer = nil
    }

    // No `close()` in deinit: the C handle and its libevent events belong to the loop thread, and the last
    // reference may go on another (a free there races the running loop). Owners call `close()` on the loop.

    /// Tasks watched now (by one watcher or more).
    public var watchedTasks: Int { tasks.count }

    /// Follow `taskId`. Each watcher gets, in order and each once: the snapshot (PENDING when
    /// no record), then every later state; nothing after a final state. `onUpdate` is never
    /// called from within `watch`. nil when the loop watches `maxWatchedTasks` tasks already.
    ///
    ///     let token = watch.watch("4f1c…") { update in peer.sendText(update.message) }
    public func watch(_ taskId: String, _ onUpdate: @escaping (Update) -> Void) -> Token? {
        let existing = tasks[ResultRecord.key(taskId)]
        if existing == nil, tasks.count >= maxWatchedTasks { return nil }
        nextToken += 1
        let watcher = Watcher(token: Token(id: nextToken), onUpdate: onUpdate)
        let watched = existing ?? Watched(taskId: taskId)
        watched.watchers.append(watcher)
        byToken[nextToken] = (watched, watcher)
        if existing == nil {
            tasks[watched.channel] = watched
            subscriber.subscribe(watched.channel)  // may report the confirmation at once (a channel kept idle)
        } else if watched.confirmed {
            watcher.phase = .reading(session: nil, held: [])
            queueRead(watched)
        }
        return watcher.token
    }

    /// Stop one watcher; the last one of a task releases its channel.
    public func unwatch(_ token: Token) {
        guard let (watched, watcher) = byToken.removeValue(forKey: token.id) else { return }
        watcher.active = false
        watched.watchers.removeAll { $0 === watcher }
        if watched.watchers.isEmpty {
            tasks.removeValue(forKey: watched.channel)
            subscriber.release(watched.channel)
        }
    }

    // MARK: - subscriber events

    private func confirmed(_ channel: String) {
        guard let watched = tasks[channel] else { return }
        watched.confirmed = true
        var wanted = false
        for w in watched.watchers where !w.done {
            if case .awaiting = w.phase {
                w.phase = .reading(session: nil, held: [])
                wanted = true
            }
        }
        if wanted { queueRead(watched) }
    }

    private func message(_ channel: String, _ payload: [UInt8]) {
        guard let watched = tasks[channel] else { return }
        var update: Update?
        func made() -> Update {
            if let update { return update }
            let u = Update(taskId: watched.taskId, record: String(decoding: payload, as: UTF8.self))
            update = u
            return u
        }
        for w in watched.watchers where w.active && !w.done {
            switch w.phase {
            case .awaiting: break
            case .reading(let session, var held):
                held.append(made())
                w.phase = .reading(session: session, held: held)
            case .live: deliver(made(), to: w)
            }
        }
    }

    /// The link dropped: every watcher waits for its channel's confirmation on the next link.
    private func down() {
        for watched in tasks.values {
            watched.confirmed = false
            for w in watched.watchers { w.phase = .awaiting }
        }
    }

    // MARK: - reads

    private func queueRead(_ watched: Watched) {
        guard !watched.queued else { return }
        watched.queued = true
        readQueue.append(watched)
        if flushTimer == nil {
            flushTimer = loop.timer(after: 0) { [weak self] in self?.flush() }
        }
    }

    /// Send the reads queued this loop turn, ≤ `maxKeysPerRead` keys per MGET.
    private func flush() {
        flushTimer = nil
        let queue = readQueue
        readQueue = []
        var batch: [Watched] = []
        for watched in queue {
            watched.queued = false
            guard tasks[watched.channel] === watched, watched.watchers.contains(where: \.isReadingUnsent) else {
                continue
            }
            batch.append(watched)
            if batch.count == Self.maxKeysPerRead {
                read(batch)
                batch = []
            }
        }
        if !batch.isEmpty { read(batch) }
    }

    private func read(_ batch: [Watched]) {
        nextSession += 1
        let session = nextSession
        for watched in batch {
            for w in watched.watchers {
                if case .reading(nil, let held) = w.phase { w.phase = .reading(session: session, held: held) }
            }
        }
        beforeRead?(batch.map(\.taskId))
        let sent =
            redis.pending < maxPendingRedis
            && redis.send(["MGET"] + batch.map(\.channel)) { [weak self] reply in
                self?.readDone(batch, session: session, reply: reply)
            }
        if sent { reads += 1 } else { retry(batch, session: session) }
    }

    private func readDone(_ batch: [Watched], session: Int, reply: RedisValue?) {
        guard case .array(let values)? = reply, values.count == batch.count else {
            if case .error(let e)? = reply { logger.warning("result watch: MGET failed: \(e)") }
            return retry(batch, session: session)
        }
        let snapshots: [String?] = values.map {
            if case .string(let bytes) = $0 { return String(decoding: bytes, as: UTF8.self) }
            return nil
        }
        subscriber.barrier { [weak self] ok in
            guard let self else { return }
            guard ok else { return self.barrierFailed(batch, session: session) }
            for (watched, snapshot) in zip(batch, snapshots) { self.settle(watched, session: session, snapshot) }
        }
    }

    /// The barrier failed (the link dropped, or was down when asked): the read proves nothing.
    /// Its watchers wait for their channel's confirmation again and are read again then; a
    /// channel the subscriber still reports confirmed (no new confirmation is coming) is read
    /// again soon instead.
    private func barrierFailed(_ batch: [Watched], session: Int) {
        var again: [Watched] = []
        for watched in batch where tasks[watched.channel] === watched {
            let stillConfirmed = subscriber.isConfirmed(watched.channel)
            if !stillConfirmed { watched.confirmed = false }
            for w in watched.watchers {
                guard case .reading(let s?, let held) = w.phase, s == session else { continue }
                w.phase = stillConfirmed ? .reading(session: nil, held: held) : .awaiting
            }
            if stillConfirmed { again.append(watched) }
        }
        if !again.isEmpty { retry(again, session: -1) }
    }

    /// The barrier passed: deliver the snapshot and the messages held, by the rule.
    private func settle(_ watched: Watched, session: Int, _ snapshot: String?) {
        var update: Update?
        for w in watched.watchers where w.active {
            guard case .reading(let s?, let held) = w.phase, s == session else { continue }
            w.phase = .live
            if !held.contains(where: { $0.record == snapshot }) {
                let u = update ?? Update(taskId: watched.taskId, record: snapshot)
                update = u
                deliver(u, to: w)
            }
            for m in held { deliver(m, to: w) }
        }
    }

    /// A read that could not be sent or failed: its watchers (still holding their messages) read again soon.
    private func retry(_ batch: [Watched], session: Int) {
        for watched in batch {
            for w in watched.watchers {
                if case .reading(let s?, let held) = w.phase, s == session {
                    w.phase = .reading(session: nil, held: held)
                }
            }
        }
        retrying += batch
        guard retryTimer == nil else { return }
        retryTimer = loop.timer(after: 200) { [weak self] in
            guard let self else { return }
            self.retryTimer = nil
            let again = self.retrying
            self.retrying = []
            for watched in again where self.tasks[watched.channel] === watched { self.queueRead(watched) }
        }
    }

    private func deliver(_ update: Update, to w: Watcher) {
        guard w.active, !w.done else { return }
        if let last = w.last, last == update.record { return }
        w.last = .some(update.record)
        if update.isFinal { w.done = true }
        w.onUpdate(update)
    }
}
