/// A task asking to run again later: `throw ctx.retry(after: 5, because: error)`.
public struct TaskRetry: Error, Sendable {
    /// Seconds to wait; nil uses the task's exponential backoff.
    public var countdown: Double?
    /// The error behind the retry; it becomes the FAILURE once retries run out.
    public var cause: TaskFailure?

    public init(countdown: Double? = nil, cause: TaskFailure? = nil) {
        self.countdown = countdown
        self.cause = cause
    }
}
