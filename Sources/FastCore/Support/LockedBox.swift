import Foundation
import Synchronization

/// A value guarded by a lock, shared between threads. A read-modify-write goes
/// through `modify` (one lock held across both), never `set(get() + …)`.
///
///     let inbox = LockedBox<[String]>([])
///     inbox.modify { $0.append("ping") }
///     let taken = inbox.modify { box in defer { box.removeAll() }; return box }
public final class LockedBox<Value: Sendable>: Sendable {
    /// Stored inline: a box is one allocation (an NSLock adds two, per task on the hot path).
    private let state: Mutex<Value>
    public init(_ value: Value) { state = Mutex(value) }
    public func get() -> Value { state.withLock { $0 } }
    public func set(_ v: Value) { state.withLock { $0 = v } }
    /// Change the value under the lock; returns what `body` returns.
    @discardableResult
    public func modify<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        try state.withLock { try body(&$0) }
    }
    /// The value as it was, leaving `replacement` in its place (one lock).
    public func exchange(_ replacement: Value) -> Value {
        state.withLock { v in
            let old = v
            v = replacement
            return old
        }
    }
}
