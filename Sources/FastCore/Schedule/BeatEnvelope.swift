/// One schedule entry's beat envelope, compiled once: the exact bytes
/// `BeatMessage.envelope(of: BeatMessage.message(for: entry, sentAt: t, id: id), for: entry)` gives,
/// with only what varies per message written per message.
///
/// Per message only the task id (headers `id` and `root_id`, property `correlation_id`), the
/// `expires` header (`sentAt` + the entry's `expires`, `CeleryTime.isoformat`; only when the entry
/// has one), and the two ids `TaskMessage` makes fresh for every message (property `reply_to`,
/// kombu's `delivery_tag`) are written. Everything else (the body `[args, kwargs, embed]` and its
/// base64, `argsrepr`/`kwargsrepr`, task, queue, priority, `expiration`, origin) is the same for
/// every message of the entry and is written once, here.
///
/// The template is cut out of what `BeatMessage` writes for the entry (with unique marker ids in
/// the varying places), so it follows `BeatMessage` by construction; `BeatEnvelopeTests` pins the
/// two byte for byte. Make a new one when the entry changes.
///
///     let template = BeatEnvelope(entry: entry)
///     let raw = template.bytes(id: TaskMessage.newId(), sentAt: CeleryTime.now())
///     // LPUSH QueueKeys.listKey(queue: entry.options.queue ?? "celery", priority: entry.options.priority ?? 0) raw
public struct BeatEnvelope: Sendable {
    /// A place in the envelope written per message.
    enum Slot: Sendable, Hashable, CaseIterable {
        /// The task id, quoted (headers `id`, `root_id`; property `correlation_id`).
        case id
        /// The `expires` header's ISO 8601 time, quoted.
        case expires
        /// The `reply_to` property, quoted.
        case replyTo
        /// kombu's `delivery_tag` property, quoted.
        case deliveryTag
    }

    /// A literal run of the template (`literal[start..<end]`) followed by a slot (nil after the last run).
    struct Part: Sendable {
        let end: Int
        let slot: Slot?
    }

    /// The entry the template was made for (compare with a reloaded entry to know when to remake it).
    public let entry: ScheduleEntry
    /// The sender written in the `origin` header.
    public let origin: String
    /// Every constant byte of the envelope, in order; the slots go between the parts' runs.
    let literal: [UInt8]
    /// The runs and the slots after them; empty when the template could not be cut (then every
    /// message is written by `BeatMessage` itself).
    let parts: [Part]

    /// The template for `entry`, its messages sent by `origin` (`pid@host` by default).
    ///
    ///     let template = BeatEnvelope(entry: entry)
    public init(entry: ScheduleEntry, origin: String = TaskMessage.defaultOrigin) {
        self.entry = entry
        self.origin = origin
        // Unique markers (fresh random uuids cannot occur in the entry's own text, and the body is base64).
        let markers: [(slot: Slot, text: String)] = [
            (.id, TaskMessage.newId()), (.expires, TaskMessage.newId()), (.replyTo, TaskMessage.newId()),
            (.deliveryTag, TaskMessage.newId()),
        ]
        let reference = Array(
            Self.referenceEnvelope(
                entry: entry, origin: origin, id: markers[0].text, sentAt: 0, expires: markers[1].text,
                replyTo: markers[2].text, deliveryTag: markers[3].text
            ).utf8)
        let quoted = markers.map { (slot: $0.slot, bytes: Array(("\"" + $0.text + "\"").utf8)) }
        var literal: [UInt8] = []
        literal.reserveCapacity(reference.count)
        var parts: [Part] = []
        var counts: [Slot: Int] = [:]
        var i = 0
        scan: while i < reference.count {
            if reference[i] == UInt8(ascii: "\"") {
                for marker in quoted where reference.count - i >= marker.bytes.count {
                    if reference[i..<i + marker.bytes.count].elementsEqual(marker.bytes) {
                        parts.append(Part(end: literal.count, slot: marker.slot))
                        counts[marker.slot, default: 0] += 1
                        i += marker.bytes.count
                        continue scan
                    }
                }
            }
            literal.append(reference[i])
            i += 1
        }
        parts.append(Part(end: literal.count, slot: nil))
        // What BeatMessage writes today: the id 3 times, the others once (expires only when set).
        let expected: [Slot: Int] = [
            .id: 3, .replyTo: 1, .deliveryTag: 1, .expires: entry.options.expires == nil ? 0 : 1,
        ]
        let cut = Slot.allCases.allSatisfy { counts[$0, default: 0] == expected[$0] }
        self.literal = cut ? literal : []
        self.parts = cut ? parts : []
    }

    /// True when messages are written from the template (false only if `BeatMessage`'s output
    /// could not be cut into the expected slots: then each message is built by `BeatMessage`).
    var isCompiled: Bool { !parts.isEmpty }

    /// The envelope for task `id` sent at `sentAt` (epoch seconds), with fresh `reply_to` and
    /// `delivery_tag` ids, as `BeatMessage` makes them.
    ///
    ///     let raw = template.bytes(id: TaskMessage.newId(), sentAt: CeleryTime.now())
    public func bytes(id: String, sentAt: Double) -> [UInt8] {
        bytes(id: id, sentAt: sentAt, replyTo: TaskMessage.newId(), deliveryTag: TaskMessage.newId())
    }

    /// The envelope with the given `reply_to` and `delivery_tag` (both fresh per message in
    /// `bytes(id:sentAt:)`; given here to compare or replay a message exactly).
    ///
    ///     let raw = template.bytes(id: id, sentAt: t, replyTo: TaskMessage.newId(), deliveryTag: TaskMessage.newId())
    public func bytes(id: String, sentAt: Double, replyTo: String, deliveryTag: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(literal.count + 3 * (id.utf8.count + 2) + 160)
        write(id: id, sentAt: sentAt, replyTo: replyTo, deliveryTag: deliveryTag, to: &out)
        return out
    }

    /// Append the envelope for task `id` sent at `sentAt` to `out` (fresh `reply_to` and
    /// `delivery_tag`), e.g. into a reused buffer.
    ///
    ///     buffer.removeAll(keepingCapacity: true)
    ///     template.write(id: id, sentAt: now, to: &buffer)
    public func write(id: String, sentAt: Double, to out: inout [UInt8]) {
        write(id: id, sentAt: sentAt, replyTo: TaskMessage.newId(), deliveryTag: TaskMessage.newId(), to: &out)
    }

    /// Append the envelope with the given `reply_to` and `delivery_tag` to `out`.
    ///
    ///     template.write(id: id, sentAt: now, replyTo: replyTo, deliveryTag: tag, to: &buffer)
    public func write(id: String, sentAt: Double, replyTo: String, deliveryTag: String, to out: inout [UInt8]) {
        guard isCompiled else {
            out.append(
                contentsOf: Self.referenceEnvelope(
                    entry: entry, origin: origin, id: id, sentAt: sentAt, expires: nil, replyTo: replyTo,
                    deliveryTag: deliveryTag
                ).utf8)
            return
        }
        literal.withUnsafeBufferPointer { lit in
            var start = 0
            for part in parts {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: lit[start..<part.end]))
                start = part.end
                switch part.slot {
                case .id: JSON.writeString(id, to: &out)
                case .replyTo: JSON.writeString(replyTo, to: &out)
                case .deliveryTag: JSON.writeString(deliveryTag, to: &out)
                case .expires:
                    // isoformat's characters need no JSON escape: quote them as they are.
                    out.append(UInt8(ascii: "\""))
                    CeleryTime.writeIsoformat(sentAt + (entry.options.expires ?? 0), to: &out)
                    out.append(UInt8(ascii: "\""))
                case nil: break
                }
            }
        }
    }

    /// What `BeatMessage` sends for `entry` with these per-message values; `expires` (when
    /// given) replaces the header `BeatMessage` computes from `sentAt`.
    static func referenceEnvelope(
        entry: ScheduleEntry, origin: String, id: String, sentAt: Double, expires: String?, replyTo: String,
        deliveryTag: String
    ) -> String {
        var m = BeatMessage.message(for: entry, sentAt: sentAt, id: id, origin: origin)
        m.replyTo = replyTo
        m.deliveryTag = deliveryTag
        if let expires, entry.options.expires != nil { m.expires = expires }
        return BeatMessage.envelope(of: m, for: entry)
    }
}
