import CEventShim
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The client's libevent loop on a thread of its own. Work is handed over from any thread
/// (`submit`): appended to a locked queue, and the loop is woken by a bell it watches
/// (`ce_bell_watch`, an eventfd) — one ring per batch, however many jobs it holds. Jobs
/// run on the loop's thread, where every Redis connection of the client lives, so the
/// caller's thread never blocks (a job is queued, never waited for). Once `stop` ran,
/// `submit` refuses every job (returns false): the caller fails it at once.
///
///     let loop = try ClientLoop(name: "celeris-client")
///     if !loop.submit({ print("on the loop") }) { /* stopped */ }
final class ClientLoop: @unchecked Sendable {
    let loop: EventLoop
    private struct Queue: @unchecked Sendable {
        var jobs: [@Sendable () -> Void] = []
        var rung = false
        var stopped = false
        /// Released on the loop's thread once it stopped (what its jobs used).
        var keep: [AnyObject] = []
    }
    private let queue = LockedBox(Queue())
    private var watch: OpaquePointer?
    /// The eventfd: closed only in `deinit`, so a ring racing `stop` never writes into a
    /// closed (or reused) descriptor.
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
            // Stopped: no job runs any more (`submit` refuses them), so what they used goes
            // now, on this thread (its timers and connections belong to this loop).
            ce_bell_watch_free(self.watch)
            self.watch = nil
            let kept = self.queue.modify { q -> [AnyObject] in
                defer { q.keep.removeAll() }
                q.jobs.removeAll()
                return q.keep
            }
            _ = kept
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    deinit { close(bell) }

    /// Run `job` on the loop's thread, soon; returns at once. False (the job dropped, never
    /// run) once `stop` ran.
    @discardableResult
    func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        let (accepted, ring) = queue.modify { q -> (Bool, Bool) in
            guard !q.stopped else { return (false, false) }
            q.jobs.append(job)
            defer { q.rung = true }
            return (true, !q.rung)
        }
        if ring { ce_bell_ring(bell) }
        return accepted
    }

    /// Stop the loop after the jobs queued so far (its thread then ends); `keep` is released
    /// on the loop's thread after it stopped. Later `submit`s are refused.
    func stop(keeping keep: AnyObject? = nil) {
        let ring = queue.modify { q -> Bool in
            guard !q.stopped else {
                if let keep { q.keep.append(keep) }
                return false
            }
            q.jobs.append { [self] in self.loop.stop() }
            q.stopped = true
            if let keep { q.keep.append(keep) }
            defer { q.rung = true }
            return !q.rung
        }
        if ring { ce_bell_ring(bell) }
    }

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
