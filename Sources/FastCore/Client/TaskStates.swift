/// A task's states as they happen (`TaskHandle.states`): the stored state first (PENDING
/// when nothing is stored yet), then every published update in order, ending after the
/// final state (SUCCESS, FAILURE, REVOKED). An update equal to the one before it (the
/// stored record read and also published) is yielded once. Stopping the iteration
/// (leaving the loop, cancelling the task) unsubscribes.
///
///     for try await status in handle.states { print(status.state, status.result) }
public struct TaskStates: AsyncSequence, Sendable {
    /// One state of the task.
    public typealias Element = TaskStatus
    let id: String
    let client: CelerisClient

    /// Walks the states; made by `makeAsyncIterator` (a `for try await` loop makes it).
    ///
    ///     var it = handle.states.makeAsyncIterator(); let first = try await it.next()
    public struct AsyncIterator: AsyncIteratorProtocol {
        var inner: AsyncThrowingStream<TaskStatus, Error>.AsyncIterator
        /// The next state; nil after the final one. Throws `CelerisClientError` (e.g.
        /// `.closed`) when the states cannot be followed any more.
        ///
        ///     while let s = try await it.next() { print(s.state) }
        public mutating func next() async throws -> TaskStatus? { try await inner.next() }
    }

    /// Subscribe to the task's result channel and read its stored state (each iterator
    /// watches on its own).
    ///
    ///     var it = handle.states.makeAsyncIterator()
    public func makeAsyncIterator() -> AsyncIterator {
        let (stream, continuation) = AsyncThrowingStream<TaskStatus, Error>.makeStream()
        let id = id
        let client = client
        let last = LockedBox<(record: [UInt8]?, yielded: Bool, done: Bool)>((nil, false, false))
        let token = client.watchStates(of: id) { event in
            // Runs on the client's loop, one event at a time.
            switch event {
            case .record(let bytes):
                let fresh = last.modify { s -> Bool in
                    guard !s.done, s.record != bytes else { return false }
                    s.record = bytes
                    s.yielded = true
                    return true
                }
                guard fresh else { return }
                guard let status = TaskStatus(taskId: id, record: bytes) else {
                    last.modify { $0.done = true }
                    return continuation.finish(
                        throwing: CelerisClientError.malformedResult(taskId: id, reason: "not a result record"))
                }
                continuation.yield(status)
                if status.isFinal {
                    last.modify { $0.done = true }
                    continuation.finish()
                }
            case .missing:
                let first = last.modify { s -> Bool in
                    defer { s.yielded = true }
                    return !s.yielded && !s.done
                }
                if first { continuation.yield(TaskStatus(taskId: id, state: TaskState.pending.rawValue)) }
            case .failed(let e):
                last.modify { $0.done = true }
                continuation.finish(throwing: e)
            }
        }
        continuation.onTermination = { _ in client.unwatch(id, token: token) }
        return AsyncIterator(inner: stream.makeAsyncIterator())
    }
}
