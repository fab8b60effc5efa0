import CEventShim
import Foundation

/// The client's libevent loop on a thread of its own. Work is handed over from any thread
/// (`submit`): appended to a locked queue, and the loop is woken by a bell it watches
/// (`ce_bell_watch`, an eventfd) — one ring per batch, however many jobs it holds. Jobs
/// run on the loop's thread, where every Redis connection of the client lives, so the
/// caller's thread never blocks (a job is queued, never waited for).
///
///     let loop = try ClientLoop(name: "celeris-client")
///     loop.submit { print("on the loop") }
final class ClientLoop: @unchecked Sendable {
    let loop: EventLoop
    private struct Queue: Sendable {
        var jobs: [@Sendable () -> Void] = []
        var rung = false
    }
    private let queue = LockedBox(Queue())
    private var watch: OpaquePointer?
    private let bell: Int32

    init(name: String) throws {
        loop = try EventLoop()
        let watch = ce_bell_watch_new(loop.handle, bellTrampoline, nil)
        guard let watch else { throw CelerisClientError.unavailable("cannot watch a wakeup descriptor") }
        self.watch = watch
        bell = ce_bell_watch_fd(watch)
        // The callback's context is set once `self` exists.
        ce_bell_watch_set_context(watch, Unmanaged.passUnretained(self).toOpaque())
        let thread = Thread { [self] in
            self.loop.run()
            // Stopped: nothing rings any more once `close` ran.
            ce_bell_watch_free(self.watch)
            self.watch = nil
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Run `job` on the loop's thread, soon; returns at once.
    func submit(_ job: @escaping @Sendable () -> Void) {
        let ring = queue.modify { q -> Bool in
            q.jobs.append(job)
            defer { q.rung = true }
            return !q.rung
        }
        if ring { ce_bell_ring(bell) }
    }

    /// Stop the loop after the jobs queued so far (its thread then ends).
    func stop() { submit { [self] in self.loop.stop() } }

    fileprivate func drain() {
        let jobs = queue.modify { q -> [@Sendable () -> Void] in
            defer {
                q.jobs.removeAll(keepingCapacity: true)
                q.rung = false
            }
            return q.jobs
        }
        for job in jobs { job() }
    }
}

private func bellTrampoline(_ ctx: UnsafeMutableRawPointer?) {
    guard let ctx else { return }
    Unmanaged<ClientLoop>.fromOpaque(ctx).takeUnretainedValue().drain()
}
