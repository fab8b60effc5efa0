import CEventShim

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
