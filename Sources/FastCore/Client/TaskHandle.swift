/// A task sent by a `CelerisClient`: its id, its result and its states.
///
///     let handle = try await client.send("add", args: [2, 3])
///     let sum = try await handle.get(timeout: .seconds(10))
///     for try await status in handle.states { print(status.state) }
public struct TaskHandle<Output: Codable & Sendable>: Sendable {
    /// The task's id (Celery's `task_id`; its result is stored under `celery-task-meta-<id>`).
    ///
    ///     let again = client.handle(for: handle.id)
    public let id: String
    let client: CelerisClient
    let decode: @Sendable (JSON) throws -> Output

    init(id: String, client: CelerisClient, decode: @escaping @Sendable (JSON) throws -> Output) {
        self.id = id
        self.client = client
        self.decode = decode
    }

    /// The result, awaited on its result channel (subscribed first, then the key is read,
    /// so a result stored before the call is found too). FAILURE throws the task's
    /// `TaskFailure` (Celery's `exc_type`, its message); REVOKED throws `TaskFailure`
    /// `TaskRevokedError`; no final state within `timeout` throws
    /// `CelerisClientError.timedOut` (the task may still finish: call again).
    ///
    ///     do { print(try await handle.get(timeout: .seconds(5))) }
    ///     catch let failure as TaskFailure { print(failure.type) }
    public func get(timeout: Duration) async throws -> Output {
        let status = try await client.finalStatus(of: id, timeout: timeout)
        if let failure = status.failure { throw failure }
        do {
            return try decode(status.result)
        } catch {
            throw CelerisClientError.malformedResult(taskId: id, reason: "\(error)")
        }
    }

    /// The task's final state (SUCCESS, FAILURE or REVOKED) without decoding it.
    ///
    ///     let status = try await handle.status(timeout: .seconds(5))
    public func status(timeout: Duration) async throws -> TaskStatus {
        try await client.finalStatus(of: id, timeout: timeout)
    }

    /// Every state in order: the stored one (PENDING when nothing is stored yet), then
    /// each update the worker publishes (STARTED, PROGRESS…, RETRY), then the final
    /// state, after which the sequence ends.
    ///
    ///     for try await s in handle.states where s.state == "PROGRESS" { print(s.result) }
    public var states: TaskStates { TaskStates(id: id, client: client) }

    /// `CelerisClient.revoke` for this task.
    ///
    ///     try await handle.revoke(terminate: true)
    public func revoke(terminate: Bool = false) async throws {
        try await client.revoke(id, terminate: terminate)
    }
}
