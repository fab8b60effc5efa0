import CEventShim
import Foundation

/// Redis writes that executor threads hand to the consumer's connection:
/// progress updates, and completions (result + ack). The consumer drains the
/// whole box into one pipelined write. While the box is empty the consumer
/// waits on a bell (an eventfd) and, optionally, sockets of its own (the queue
/// wakers'), so one wait ends on whichever comes first.
///
///     outbox.post(Outbox.Entry(commands: cmds, completes: tag))
///     let batch = outbox.take(waitingUpTo: 0.01)
public final class Outbox: @unchecked Sendable {
    /// One group of commands; `completes` names the delivery (tag) it finishes;
    /// `event` is a Celery task event to publish (when events are on).
    public struct Entry: Sendable {
        /// The commands as RESP, encoded by the posting thread for the consumer's
        /// `WriteBatch` (the command arrays are freed there too, not on the consumer).
        var part: WriteBatch.Part
        public var completes: String?
        public var event: JSON?
        /// A chord header task's result to count into its chord before the ack.
        var chord: ChordPart?
        /// `acknowledges`: the commands' transaction also acks the delivery `completes` names.
        public init(commands: [[String]], completes: String? = nil, acknowledges: Bool = false, event: JSON? = nil) {
            self.init(
                part: WriteBatch.Part(commands, acknowledging: acknowledges ? completes : nil), completes: completes,
                event: event)
        }

        /// An entry from a part already encoded (a completion: `store`, `transact`, `acknowledge`).
        public init(part: WriteBatch.Part, completes: String? = nil, event: JSON? = nil) {
            self.part = part
            self.completes = completes
            self.event = event
        }
    }

    private let lock = NSLock()
    // Exclusivity: these are used under `lock` only: the run-time check is pure cost.
    @exclusivity(unchecked) private var entries: [Entry] = []
    /// Written parts' transaction buffers, for the executors' next parts.
    @exclusivity(unchecked) private var spare: [[UInt8]] = []
    /// At most this many spare buffers are kept, none bigger than `spareBytes`.
    public static let spareCount = 1024
    public static let spareBytes = 16 << 10
    @exclusivity(unchecked) private var woken = false
    /// The consumer is in `take`'s wait: the next post rings the bell (and clears this).
    @exclusivity(unchecked) private var waiting = false
    private let bell: Int32

    public init() {
        bell = ce_bell_new()
        precondition(bell >= 0, "eventfd: \(String(cString: strerror(errno)))")
    }

    deinit { close(bell) }

    /// Add an entry and wake the consumer if it waits (the bell rings after the unlock).
    public func post(_ entry: Entry) {
        lock.lock()
        entries.append(entry)
        unlockAndWake()
    }

    /// Post, and take a written part's buffer for the poster's next part (`buffer` is
    /// left as it is when there is none): an executor's parts reuse the consumer's
    /// written ones instead of allocating.
    ///
    ///     var spare: [UInt8] = []
    ///     outbox.post(entry, recycling: &spare)   // then WriteBatch.Part(reusing: &spare)
    public func post(_ entry: Entry, recycling buffer: inout [UInt8]) {
        lock.lock()
        entries.append(entry)
        if buffer.capacity == 0, let b = spare.popLast() { buffer = b }
        unlockAndWake()
    }

    /// Keep written parts' buffers for reuse (up to `spareCount`, those of at most `spareBytes`).
    public func recycle(_ buffers: [[UInt8]]) {
        var buffers = buffers
        recycle(&buffers)
    }

    /// `recycle`, emptying `buffers` (its storage kept) before an executor can take one:
    /// a buffer still listed there would be shared, and copied on reuse.
    public func recycle(_ buffers: inout [[UInt8]]) {
        guard !buffers.isEmpty else { return }
        lock.lock()
        for b in buffers where spare.count < Self.spareCount && b.capacity <= Self.spareBytes { spare.append(b) }
        buffers.removeAll(keepingCapacity: true)
        lock.unlock()
    }

    /// Wake a waiting consumer without posting (shutdown).
    public func wake() {
        lock.lock()
        woken = true
        unlockAndWake()
    }

    /// Unlock, then ring the bell if the consumer was waiting (once: the flag is cleared).
    private func unlockAndWake() {
        let ring = waiting
        waiting = false
        lock.unlock()
        if ring { ce_bell_ring(bell) }
    }

    /// Everything posted so far; waits up to `seconds` while empty.
    public func take(waitingUpTo seconds: Double) -> [Entry] {
        var readable: [Int32] = []
        return take(waitingUpTo: seconds, watching: [], readable: &readable)
    }

    /// Everything posted so far; while empty, waits up to `seconds` or until one of
    /// `sockets` is readable. The readable ones are appended to `readable` (with
    /// entries already posted, or `seconds` 0, the sockets are only looked at).
    ///
    ///     var ready: [Int32] = []
    ///     let batch = outbox.take(waitingUpTo: 0.1, watching: [socket], readable: &ready)
    public func take(waitingUpTo seconds: Double, watching sockets: [Int32], readable: inout [Int32]) -> [Entry] {
        var out: [Entry] = []
        take(waitingUpTo: seconds, watching: sockets, readable: &readable, into: &out)
        return out
    }

    /// `take`, swapping the posted entries into `out` (which must be empty): its storage
    /// becomes the box's, so the consumer's turns reuse two arrays, not one per turn.
    ///
    ///     outbox.take(waitingUpTo: 0, watching: [], readable: &ready, into: &entries)
    public func take(
        waitingUpTo seconds: Double, watching sockets: [Int32], readable: inout [Int32], into out: inout [Entry]
    ) {
        precondition(out.isEmpty, "take(into:) needs an empty array")
        lock.lock()
        let wait = entries.isEmpty && !woken && seconds > 0
        if wait || !sockets.isEmpty {
            waiting = wait
            lock.unlock()
            // The sockets, then the bell when waiting, in scratch space on the stack.
            let n = sockets.count + (wait ? 1 : 0)
            withUnsafeTemporaryAllocation(of: Int32.self, capacity: n) { fds in
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: n) { flags in
                    for (i, fd) in sockets.enumerated() { fds[i] = fd }
                    if wait { fds[n - 1] = bell }
                    flags.initialize(repeating: 0)
                    let timeout = wait ? Int(min(seconds, 3600) * 1e6) : 0
                    _ = ce_wait_readable(fds.baseAddress, Int32(n), timeout, flags.baseAddress)
                    if wait && flags[n - 1] != 0 { ce_bell_clear(bell) }
                    for (i, fd) in sockets.enumerated() where flags[i] != 0 { readable.append(fd) }
                }
            }
            lock.lock()
            waiting = false
        }
        woken = false
        swap(&out, &entries)
        lock.unlock()
    }

    /// Put entries back at the front (their write failed).
    public func requeue(_ failed: [Entry]) {
        lock.lock()
        entries.insert(contentsOf: failed, at: 0)
        lock.unlock()
    }
}
