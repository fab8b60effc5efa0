import Foundation

/// Resolves a host name on a thread, off the loop, and hands its addresses to `done` on
/// the loop (polled every `pollMs`: a lookup takes milliseconds at best, so a 50 ms poll
/// costs nothing while it blocks). Holds its timer; `cancel()` (or dropping it) means
/// `done` never runs.
///
///     lookup = HostLookup(host: "redis", loop: loop) { [weak self] addresses in self?.open(addresses) }
final class HostLookup {
    private var timer: LoopTimer?

    /// Start resolving `host`; `done` gets its addresses (empty when it does not resolve).
    init(host: String, loop: EventLoop, pollMs: UInt64 = 50, _ done: @escaping ([String]) -> Void) {
        let resolved = LockedBox<[String]?>(nil)
        let resolver = Thread { resolved.set(RedisEndpoint.resolve(host: host)) }
        resolver.name = "celeris-resolve"
        resolver.start()
        timer = loop.timer(after: pollMs, repeating: true) { [weak self] in
            guard let self, let addresses = resolved.get() else { return }
            self.cancel()
            done(addresses)
        }
    }

    /// Stop polling: `done` will not run.
    func cancel() { timer?.cancel() }
}
