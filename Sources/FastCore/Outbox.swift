import Foundation

/// Redis writes that executor threads hand to the consumer's connection:
/// progress updates, and completions (result + ack). The consumer drains the
/// whole box into one pipelined write.
///
///     outbox.post(Outbox.Entry(commands: cmds, completes: tag))
///     let batch = outbox.take(waitingUpTo: 0.01)
public final class Outbox: @unchecked Sendable {
    /// One group of commands; `completes` names the delivery (tag) it finishes;
    /// `event` is a Celery task event to publish (when events are on).
    public struct Entry: Sendable {
        /// The commands as RESP, encoded by the posting thread for the consumer's
        /// `WriteBatch` (the command arrays are freed there too, not on the consumer).
        let part: WriteBatch.Part
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

    private let condition = NSCondition()
    private var entries: [Entry] = []
    private var woken = false

    public init() {}

    /// Add an entry and wake the consumer. The signal follows the unlock, so the woken
    /// consumer does not block at once on the lock the poster still holds (the waiter
    /// checks `entries` under the lock before it waits, so no wake-up is lost).
    public func post(_ entry: Entry) {
        condition.lock()
        entries.append(entry)
        condition.unlock()
        condition.signal()
    }

    /// Wake a waiting consumer without posting (shutdown, a queue got a message).
    public func wake() {
        condition.lock()
        woken = true
        condition.unlock()
        condition.signal()
    }

    /// Everything posted so far; waits up to `seconds` while empty.
    public func take(waitingUpTo seconds: Double) -> [Entry] {
        condition.lock()
        defer { condition.unlock() }
        if entries.isEmpty && !woken && seconds > 0 {
            _ = condition.wait(until: Date(timeIntervalSinceNow: seconds))
        }
        woken = false
        let out = entries
        entries.removeAll(keepingCapacity: true)
        return out
    }

    /// Put entries back at the front (their write failed).
    public func requeue(_ failed: [Entry]) {
        condition.lock()
        entries.insert(contentsOf: failed, at: 0)
        condition.unlock()
    }
}
