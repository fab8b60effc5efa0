import CEventShim

/// A libevent loop for one thread; every callback runs on that thread.
///
///     let loop = try EventLoop()
///     let t = loop.timer(after: 500) { print("tick") }
///     loop.run()
public final class EventLoop {
    public let handle: OpaquePointer
    private var signalHandlers: [SignalHandler] = []

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

    /// Run `body` on the loop whenever `signo` arrives.
    public func onSignal(_ signo: Int32, _ body: @escaping (Int32) -> Void) {
        let h = SignalHandler(body: body)
        signalHandlers.append(h)
        _ = ce_loop_on_signal(handle, signo, signalTrampoline, Unmanaged.passUnretained(h).toOpaque())
    }
}

private func signalTrampoline(_ signo: Int32, _ ctx: UnsafeMutableRawPointer?) {
    Unmanaged<SignalHandler>.fromOpaque(ctx!).takeUnretainedValue().body(signo)
}
