/// Why a `CelerisClient` call did not complete. A task that ran and failed is not one of
/// these: its result's `get` throws the task's `TaskFailure` (Celery's `exc_type` and message).
///
///     do { _ = try await handle.get(timeout: .seconds(5)) }
///     catch CelerisClientError.timedOut(let id, _) { print("no result for \(id) yet") }
public enum CelerisClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No final state within the timeout (the task may still finish later).
    case timedOut(taskId: String, after: Duration)
    /// Redis could not be reached within `connectTimeout` (the command was not sent).
    case notConnected(String)
    /// The connection dropped after the command was sent: whether it was applied is unknown.
    case connectionLost(String)
    /// Redis answered with an error.
    case redis(String)
    /// The stored result is not a Celery result record, or its value does not decode.
    case malformedResult(taskId: String, reason: String)
    /// The client could not start (no event loop, no wakeup descriptor).
    case unavailable(String)
    /// `close()` was called.
    case closed
    /// A send option is out of range (the task was not sent).
    case invalidOption(String)

    /// A send option out of range (thrown as `invalidOption`).
    ///
    ///     catch let e as CelerisClientError.InvalidOption { print(e.reason) }
    public struct InvalidOption: Error, Sendable {
        /// What is wrong with the option, in words.
        public let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// The error in words, for logs.
    ///
    ///     print(error.description)   // "the client is closed"
    public var description: String {
        switch self {
        case .timedOut(let id, let after): return "no result for task \(id) within \(after)"
        case .notConnected(let what): return "Redis not reachable: \(what)"
        case .connectionLost(let what): return "connection to Redis lost (\(what)); the command may or may not have run"
        case .redis(let message): return "Redis error: \(message)"
        case .malformedResult(let id, let reason): return "result of task \(id) unreadable: \(reason)"
        case .unavailable(let why): return "client unavailable: \(why)"
        case .closed: return "the client is closed"
        case .invalidOption(let why): return "invalid send option: \(why)"
        }
    }
}
