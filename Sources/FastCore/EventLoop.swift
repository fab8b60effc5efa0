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

final class SignalHandler {
    let body: (Int32) -> Void
    init(body: @escaping (Int32) -> Void) { self.body = body }
}

private func signalTrampoline(_ signo: Int32, _ ctx: UnsafeMutableRawPointer?) {
    Unmanaged<SignalHandler>.fromOpaque(ctx!).takeUnretainedValue().body(signo)
}

/// A one-shot or repeating timer on an `EventLoop`; freed with the object.
public final class LoopTimer {
    private var handle: OpaquePointer?
    private let body: () -> Void

    init(loop: EventLoop, body: @escaping () -> Void) {
        self.body = body
        handle = nil
        handle = ce_timer_new(loop.handle, timerTrampoline, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit { ce_timer_free(handle) }

    /// (Re)arm for `ms` milliseconds.
    public func start(ms: UInt64, repeating: Bool = false) { ce_timer_start(handle, ms, repeating ? 1 : 0) }

    /// Disarm.
    public func cancel() { ce_timer_stop(handle) }

    fileprivate func fire() { body() }
}

private func timerTrampoline(_ ctx: UnsafeMutableRawPointer?) {
    Unmanaged<LoopTimer>.fromOpaque(ctx!).takeUnretainedValue().fire()
}
