import Foundation

/// Slots running tasks in arrival order: at most `size` tasks run at once, sync or
/// async. A sync task runs on a thread of its own, so one that blocks (sleep, file
/// I/O) holds one slot and never the consumer; threads are started on demand, at most
/// one per running sync task. An async task holds its slot but no thread: it runs as a
/// Swift `Task` on the global concurrent executor, and the next queued task starts when
/// it ends. The pool can hand back what has not started (shutdown), grow and shrink
/// (autoscale), and give up on a task past its hard time limit (an async one is
/// cancelled; a sync one's thread is left to finish and its slot is replaced).
///
///     let pool = ExecutorPool(size: 4)
///     pool.submit(runner)
///     let unstarted = pool.takeQueued()
public final class ExecutorPool: @unchecked Sendable {
    private let condition = NSCondition()
    // Exclusivity: these are used under `condition` only: the run-time check is pure cost.
    /// Runners in arrival order from `head` on; a taken slot is emptied at once, so a
    /// finished task is not kept alive by the queue until it is compacted.
    @exclusivity(unchecked) private var queue: [TaskContext?] = []
    @exclusivity(unchecked) private var head = 0
    /// Slots.
    @exclusivity(unchecked) private var target: Int
    /// Threads started and not exited (abandoned ones included).
    @exclusivity(unchecked) private var alive = 0
    /// Abandoned sync runners whose thread is still inside the task.
    @exclusivity(unchecked) private var abandoned = 0
    /// Abandoned async runners whose body has not ended (it ignored its cancellation).
    @exclusivity(unchecked) private var abandonedAsync = 0
    /// Tasks holding a slot (running sync or async, or stuck past a hard limit and not replaced).
    @exclusivity(unchecked) private var busy = 0
    /// Threads waiting for a sync task, and threads woken or started for one that have not looked yet.
    private var idle = 0
    private var coming = 0
    /// Abandoned runners whose slot was kept (not replaced): freed when their thread or body ends.
    private var unreplaced: Set<ObjectIdentifier> = []
    @exclusivity(unchecked) private var closed = false
    private let name: String
    /// At this many abandoned threads still running, an abandoned one is not replaced
    /// (the worker restarts: nothing queued should start now); 0: always replaced.
    private let replacesBelow: Int

    public init(size: Int, name: String = "celeris-task", replacingAbandonedBelow limit: Int = 0) {
        self.name = name
        replacesBelow = max(0, limit)
        target = max(1, size)
    }

    /// Queue a task.
    public func submit(_ runner: TaskContext) { submit(contentsOf: [runner]) }

    /// Queue tasks in order: async ones start at once while slots are free; a sync one
    /// wakes (or starts) one thread, which wakes the next as it takes its task.
    public func submit(contentsOf runners: [TaskContext]) {
        guard !runners.isEmpty else { return }
        var launch: [TaskContext] = []
        condition.withLock {
            for r in runners { queue.append(r) }
            pump(into: &launch)
        }
        Self.start(launch, pool: self)
    }

    /// Slots.
    public var size: Int { condition.withLock { target } }
    /// Tasks running now (sync and async).
    public var running: Int { condition.withLock { busy } }
    /// Tasks given up on (past a hard time limit, terminated) that are still running: sync
    /// ones' threads still inside their task and async ones whose body has not ended.
    public var abandonedThreads: Int { condition.withLock { abandoned + abandonedAsync } }
    /// Threads started and not exited (abandoned ones included).
    public var threads: Int { condition.withLock { alive } }
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
        var launch: [TaskContext] = []
        condition.withLock {
            target = max(1, size)
            pump(into: &launch)
            condition.broadcast()
        }
        Self.start(launch, pool: self)
    }

    /// A runner passed its hard time limit or was terminated: it is given up on (an async
    /// one is cancelled too) and its slot replaced, unless that makes `replacingAbandonedBelow`
    /// abandoned tasks still running (sync threads and async bodies that ignore cancellation).
    public func abandon(_ runner: TaskContext) {
        var launch: [TaskContext] = []
        let marked = condition.withLock {
            guard runner.markAbandoned() else { return false }
            if runner.runsAsync {
                abandonedAsync += 1
            } else {
                abandoned += 1
            }
            if replacesBelow == 0 || abandoned + abandonedAsync < replacesBelow {
                busy -= 1
            } else {
                unreplaced.insert(ObjectIdentifier(runner))
            }
            pump(into: &launch)
            return true
        }
        // Cancelled with no lock held: a Swift task's cancellation handlers run inside
        // `cancel()`, and one that reads the pool's or the context's state must not deadlock.
        if marked { runner.cancel() }
        Self.start(launch, pool: self)
    }

    /// Stop: threads exit once the queue is empty.
    public func shutdown() {
        condition.withLock {
            closed = true
            condition.broadcast()
        }
    }

    /// An async runner's task ended (its outcome posted): free its slot, start what is next.
    func finishedAsync(_ runner: TaskContext) {
        var launch: [TaskContext] = []
        condition.withLock {
            if !runner.isAbandoned {
                busy -= 1
            } else {
                // An abandoned body that ignored its cancellation has really ended only now.
                abandonedAsync -= 1
                if unreplaced.remove(ObjectIdentifier(runner)) != nil { busy -= 1 }
            }
            pump(into: &launch)
        }
        Self.start(launch, pool: self)
    }

    private var hasRoom: Bool { busy < target }

    /// With the lock held: take the async tasks at the head of the queue while slots are
    /// free (returned in `launch`, started after the unlock); for a sync task at the head,
    /// make sure one thread comes for it (an idle one woken, else one started).
    private func pump(into launch: inout [TaskContext]) {
        while head < queue.count && hasRoom {
            guard let r = queue[head] else { preconditionFailure("empty slot in the run queue") }
            guard r.runsAsync else {
                if idle > coming {
                    coming += 1
                    condition.signal()
                } else if coming == 0 && alive - abandoned < target {
                    coming += 1
                    spawn()
                }
                return
            }
            takeHead()
            busy += 1
            launch.append(r)
        }
    }

    private func takeHead() {
        queue[head] = nil
        head += 1
        if head > 1024 && head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
    }

    private static func start(_ launch: [TaskContext], pool: ExecutorPool) {
        for r in launch { r.startAsync(pool: pool) }
    }

    /// Start a thread (lock held).
    private func spawn() {
        alive += 1
        // Strong: a thread may first run after its pool was shut down and released by its owner
        // (it then finds the pool closed and ends); `unowned` trapped there.
        let t = Thread { self.work() }
        t.name = "\(name)-\(alive)"
        t.stackSize = 1 << 20
        t.start()
    }

    private func work() {
        var buffer: [UInt8] = []  // a written part's storage, for this thread's next result
        var launch: [TaskContext] = []
        condition.lock()
        if coming > 0 { coming -= 1 }
        while true {
            if head < queue.count && hasRoom, let runner = queue[head], !runner.runsAsync {
                takeHead()
                busy += 1
                pump(into: &launch)  // what follows: async ones start, a sync one gets a thread
                condition.unlock()
                if !launch.isEmpty {
                    Self.start(launch, pool: self)
                    launch.removeAll(keepingCapacity: true)
                }
                runner.run(reusing: &buffer)
                condition.lock()
                if runner.isAbandoned {
                    abandoned -= 1
                    alive -= 1
                    if unreplaced.remove(ObjectIdentifier(runner)) != nil {
                        busy -= 1
                        pump(into: &launch)
                    }
                    condition.unlock()
                    Self.start(launch, pool: self)
                    return
                }
                busy -= 1
                continue
            }
            if head < queue.count && hasRoom {
                pump(into: &launch)  // an async task at the head
                if !launch.isEmpty {
                    condition.unlock()
                    Self.start(launch, pool: self)
                    launch.removeAll(keepingCapacity: true)
                    condition.lock()
                    continue
                }
            }
            if alive - abandoned > target || (head == queue.count && closed) {
                alive -= 1
                condition.unlock()
                return
            }
            idle += 1
            condition.wait()
            idle -= 1
            if coming > 0 { coming -= 1 }
        }
    }
}
