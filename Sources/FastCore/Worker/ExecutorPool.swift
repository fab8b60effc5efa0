import Foundation

/// Threads running tasks in arrival order, so a task that blocks (sleep, file
/// I/O) holds one slot and never the consumer. The pool can hand back what
/// has not started (shutdown), grow and shrink (autoscale), and replace a
/// thread stuck in a task past its hard time limit.
///
///     let pool = ExecutorPool(size: 4)
///     pool.submit(runner)
///     let unstarted = pool.takeQueued()
public final class ExecutorPool: @unchecked Sendable {
    private let condition = NSCondition()
    /// Runners in arrival order from `head` on; a taken slot is emptied at once, so a
    /// finished task is not kept alive by the queue until it is compacted.
    private var queue: [TaskContext?] = []
    private var head = 0
    private var target: Int
    private var alive = 0
    private var abandoned = 0
    private var busy = 0
    private var closed = false
    private let name: String
    /// At this many abandoned threads still running, an abandoned one is not replaced
    /// (the worker restarts: nothing queued should start now); 0: always replaced.
    private let replacesBelow: Int

    public init(size: Int, name: String = "celeris-task", replacingAbandonedBelow limit: Int = 0) {
        self.name = name
        replacesBelow = max(0, limit)
        target = max(1, size)
        condition.lock()
        spawnMissing()
        condition.unlock()
    }

    /// Queue a task.
    public func submit(_ runner: TaskContext) { submit(contentsOf: [runner]) }

    /// Queue tasks in order, waking at most as many threads as there are tasks.
    public func submit(contentsOf runners: [TaskContext]) {
        guard !runners.isEmpty else { return }
        condition.withLock { for r in runners { queue.append(r) } }
        // After the unlock: a woken thread takes the lock at once (each waiter re-checks the queue).
        if runners.count == 1 { condition.signal() } else { condition.broadcast() }
    }

    /// Slots (threads not abandoned).
    public var size: Int { condition.withLock { target } }
    /// Tasks running now.
    public var running: Int { condition.withLock { busy } }
    /// Threads given up on past a hard time limit that are still inside their task.
    public var abandonedThreads: Int { condition.withLock { abandoned } }
    /// Tasks queued and not started.
    public var queued: Int { condition.withLock { queue.count - head } }

    /// Remove and return every task not yet started.
    public func takeQueued() -> [TaskContext] {
        condition.withLock {
            let out = queue[head...].compactMap { $0 }
            queue.removeAll()
            head = 0
            return out
        }
    }

    /// Remove one queued task by delivery tag (revoked before it started).
    public func cancel(tag: String) -> TaskContext? {
        condition.withLock {
            guard let i = queue[head...].firstIndex(where: { $0?.message.deliveryTag == tag }) else { return nil }
            return queue.remove(at: i).flatMap { $0 }
        }
    }

    /// Grow or shrink to `size` slots; surplus threads leave when idle.
    public func resize(to size: Int) {
        condition.withLock {
            target = max(1, size)
            spawnMissing()
            condition.broadcast()
        }
    }

    /// A runner passed its hard time limit: give up on its thread and start another
    /// (unless that makes `replacingAbandonedBelow` abandoned threads).
    public func abandon(_ runner: TaskContext) {
        condition.withLock {
            guard runner.markAbandoned() else { return }
            abandoned += 1
            busy -= 1
            if replacesBelow == 0 || abandoned < replacesBelow { spawnMissing() }
        }
    }

    /// Stop: threads exit once the queue is empty.
    public func shutdown() {
        condition.withLock {
            closed = true
            condition.broadcast()
        }
    }

    /// Start threads until the live, non-abandoned ones reach the target (lock held).
    private func spawnMissing() {
        while alive - abandoned < target {
            alive += 1
            let t = Thread { [unowned self] in self.work() }
            t.name = "\(name)-\(alive)"
            t.stackSize = 1 << 20
            t.start()
        }
    }

    private func work() {
        var buffer: [UInt8] = []  // a written part's storage, for this thread's next result
        condition.lock()
        while true {
            while head == queue.count && !closed && alive - abandoned <= target { condition.wait() }
            if alive - abandoned > target || (head == queue.count && closed) {
                alive -= 1
                condition.unlock()
                return
            }
            guard let runner = queue[head].take() else { preconditionFailure("empty slot in the run queue") }
            head += 1
            if head > 1024 && head * 2 > queue.count {
                queue.removeFirst(head)
                head = 0
            }
            busy += 1
            condition.unlock()
            runner.run(reusing: &buffer)
            condition.lock()
            if runner.isAbandoned {
                abandoned -= 1
                alive -= 1
                condition.unlock()
                return
            }
            busy -= 1
        }
    }
}
