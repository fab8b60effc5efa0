import CEventShim

/// A libevent loop for one thread; every callback runs on that thread.
///
///     let loop = try EventLoop()
///     let t = loop.timer(after: 500) { print("tick") }
///     loop.run()
public final class EventLoop {
    public let handle: OpaquePointer

    public struct Unavailable: Error, CustomStringConvertible {
        public var description: String { "libevent could not create an event base" }
    }

    public init() throws(Unavailable) {
        guard let h = ce_loop_new() else { throw Unavailable() }
        handle = h
    }

    deinit { ce_loop_free(handle) }

    /// Run until `stop()`.
    public func run() { _ = ce_loop_run(handle) }

    /// Stop after the current callbacks.
    public func stop() { ce_loop_break(handle) }

    /// A timer firing once after `ms` (or every `ms` with `repeating`); keep it to keep it armed.
    public func timer(after ms: UInt64, repeating: Bool = false, _ body: @escaping () -> Void) -> LoopTimer {
        let t = LoopTimer(loop: self, body: body)
        t.start(ms: ms, repeating: repeating)
        return t
    }
}
