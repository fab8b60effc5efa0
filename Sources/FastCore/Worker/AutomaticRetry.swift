/// What an error a task threw becomes: a retry when the task's `autoretryFor` lists it
/// (Celery's `autoretry_for`), else the task's FAILURE, typed as Celery types an exception.
///
///     switch ctx.automaticRetry(for: error) { case .retry(let r): …; case .failure(let f): … }
enum AutomaticRetry: Sendable {
    /// Run again later, as `throw ctx.retry(because: cause)` does (the task's backoff, its
    /// `maxRetries`; past them the cause is the FAILURE).
    case retry(TaskRetry)
    /// Fail now with this.
    case failure(TaskFailure)
}

extension TaskContext {
    /// The outcome of `error`, thrown by the task's function (not a `TaskRetry` or
    /// `TaskReplaced`, which are handled as such). A cancellation is the soft time limit's
    /// `SoftTimeLimitExceeded` once that has passed, or `TaskRevokedError` once the worker
    /// gave up on the task; an error of a task the worker gave up on is never retried.
    func automaticRetry(for error: any Error) -> AutomaticRetry {
        let failure = failure(for: error)
        // A cancellation is matched as what it became too (`.named("SoftTimeLimitExceeded")`).
        let listed = task.options.autoretryFor.contains {
            $0.matches(error) || (error is CancellationError && $0.matches(failure))
        }
        guard !isCancelled, listed else {
            return .failure(failure)
        }
        return .retry(TaskRetry(countdown: nil, cause: failure))
    }

    /// `error` as the failure stored for this task (`TaskFailure(error:)`, a cancellation as its cause).
    func failure(for error: any Error) -> TaskFailure {
        guard error is CancellationError else { return TaskFailure(error: error) }
        if isCancelled {
            return TaskFailure(type: "TaskRevokedError", message: "terminated", module: "celery.exceptions")
        }
        if softLimitReached.load(ordering: .acquiring) {
            return TaskFailure(type: "SoftTimeLimitExceeded", arguments: [], module: "billiard.exceptions")
        }
        if let softDeadline, settings.clock.now() >= softDeadline {
            return TaskFailure(type: "SoftTimeLimitExceeded", arguments: [], module: "billiard.exceptions")
        }
        return TaskFailure(error: error)
    }

    /// Seconds this task's result records live: the task's `resultExpires` when valid, else
    /// the worker's `--result-expires`; 0: they never expire.
    var resultExpiry: Int {
        task.options.resultExpires.flatMap(ResultRecord.expiry(seconds:)) ?? settings.resultExpires
    }
}
