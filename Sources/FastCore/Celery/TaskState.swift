/// Celery's task states as stored by the result backend.
public enum TaskState: String, Sendable {
    case pending = "PENDING", received = "RECEIVED", started = "STARTED", progress = "PROGRESS"
    case success = "SUCCESS", failure = "FAILURE", retry = "RETRY", revoked = "REVOKED"
}
