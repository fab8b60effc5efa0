/// What finished tasks leave behind for the next claims: envelope buffers and
/// delivery-tag strings. A claim copies each message into a spare buffer and writes
/// each tag over a spare tag's storage, so in steady state it allocates neither.
/// A buffer or string still shared when reused is copied first (copy-on-write), so
/// reuse only ever saves allocations.
///
///     var spare = SpareBuffers()
///     let took = try claim.finish(pending, on: redis, reusing: &spare)
///     spare.keep(envelope: finished.received)
public struct SpareBuffers: Sendable {
    /// At most this many of each are kept (as many as the outbox keeps written buffers).
    public static let limit = Outbox.spareCount
    /// Envelope buffers larger than this are let go (one huge message would pin its size).
    public static let largestEnvelope = Outbox.spareBytes

    public private(set) var envelopes: [[UInt8]] = []
    public private(set) var tags: [String] = []
    /// An emptied list of deliveries, for the next claim's.
    private var deliveries: [Delivery] = []

    public init() {}

    /// `bytes` in a spare envelope buffer (emptied first; a fresh one when none is left).
    mutating func envelope(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        guard var b = envelopes.popLast() else { return Array(bytes) }
        b.removeAll(keepingCapacity: true)
        b.append(contentsOf: bytes)
        return b
    }

    /// `bytes` (UTF-8) as a string, written over a spare tag's storage when it can be.
    mutating func tag(_ bytes: UnsafeRawBufferPointer) -> String {
        let text = UnsafeBufferPointer(
            start: bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        guard var s = tags.popLast() else { return String(decoding: text, as: UTF8.self) }
        s.assign(utf8: text)
        return s
    }

    /// Keep a finished message's envelope buffer (unless full, or it is too big or empty).
    public mutating func keep(envelope: [UInt8]) {
        guard envelope.capacity > 0, envelope.capacity <= Self.largestEnvelope, envelopes.count < Self.limit else {
            return
        }
        envelopes.append(envelope)
    }

    /// An empty list for a claim's deliveries (a started claim's storage, when kept).
    mutating func deliveryList() -> [Delivery] {
        var out: [Delivery] = []
        swap(&out, &deliveries)
        return out
    }

    /// Keep a list whose deliveries were all started, emptied, for the next claim's.
    public mutating func keep(deliveries list: [Delivery]) {
        guard list.isEmpty, list.capacity > deliveries.capacity else { return }
        deliveries = list
    }

    /// Keep a finished delivery's tag string (unless full).
    public mutating func keep(tag: String) {
        guard tags.count < Self.limit else { return }
        tags.append(tag)
    }
}
