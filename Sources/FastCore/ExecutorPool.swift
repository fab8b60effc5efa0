import Foundation

/// A fixed set of threads running task jobs in arrival order, so a task that
/// blocks (sleep, file I/O) holds one slot and never the consumer.
///
///     let pool = ExecutorPool(size: 4, name: "task")
///     pool.submit { runTask() }
///     pool.shutdown()  // finishes queued jobs, then the threads exit
public final class ExecutorPool: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0
    private var closed = false
    private var running = 0
    private var threads: [Thread] = []

    public init(size: Int, name: String) {
        for i in 0..<max(1, size) {
            let t = Thread { [unowned self] in self.work() }
            t.name = "\(name)-\(i)"
            t.stackSize = 1 << 20
            threads.append(t)
            t.start()
        }
    }

    /// Queue a job.
    public func submit(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Jobs queued and not yet started.
    public var queued: Int { condition.withLock { jobs.count - head } }

    /// Stop accepting work; threads exit once the queue is empty.
    public func shutdown() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while head == jobs.count && !closed { condition.wait() }
            if head == jobs.count {
                condition.unlock()
                return
            }
            let job = jobs[head]
            head += 1
            if head > 1024 && head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            running += 1
            condition.unlock()
            job()
            condition.lock()
            running -= 1
            condition.unlock()
        }
    }
}
