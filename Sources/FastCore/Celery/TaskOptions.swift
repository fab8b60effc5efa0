/// What a task declares about itself, as Celery's task attributes do.
///
///     registry.register("fetch", options: TaskOptions(maxRetries: 5, rateLimit: RateLimit("10/s"))) { ctx in … }
public struct TaskOptions: Sendable {
    /// Retries allowed before the task's error becomes its FAILURE.
    public var maxRetries: Int
    /// Backoff factor in seconds: retry n waits up to `retryBackoff * 2^n`.
    public var retryBackoff: Double
    /// Longest backoff.
    public var retryBackoffMax: Double
    /// Full jitter: wait a random time up to the backoff (Celery's default).
    public var retryJitter: Bool
    /// Seconds after which the task is told to stop (`SoftTimeLimitExceeded`).
    public var softTimeLimit: Double?
    /// Seconds after which the task is abandoned and fails with `TimeLimitExceeded`.
    public var timeLimit: Double?
    public var rateLimit: RateLimit?
    public var ignoreResult: Bool
    /// Errors retried on their own (Celery's `autoretry_for`): a listed error thrown by the task
    /// is a retry as `throw ctx.retry(because:)` is, after `backoff(retries:)`, until
    /// `maxRetries` is reached; then it is the task's FAILURE. Unlisted errors fail at once.
    ///
    ///     TaskOptions(maxRetries: 5, autoretryFor: [.type(QuotaExceeded.self), .named("IOError")])
    public var autoretryFor: [ErrorMatcher]
    /// Seconds this task's result records live in Redis (Celery's `result_expires`), over the
    /// worker's `--result-expires`; 0: they never expire. A positive value below a second counts
    /// as one; a negative or non-finite one is ignored (the worker's setting holds).
    public var resultExpires: Double?

    public init(
        maxRetries: Int = 3, retryBackoff: Double = 1, retryBackoffMax: Double = 600, retryJitter: Bool = true,
        softTimeLimit: Double? = nil, timeLimit: Double? = nil, rateLimit: RateLimit? = nil, ignoreResult: Bool = false,
        autoretryFor: [ErrorMatcher] = [], resultExpires: Double? = nil
    ) {
        self.maxRetries = maxRetries
        self.retryBackoff = retryBackoff
        self.retryBackoffMax = retryBackoffMax
        self.retryJitter = retryJitter
        self.softTimeLimit = softTimeLimit
        self.timeLimit = timeLimit
        self.rateLimit = rateLimit
        self.ignoreResult = ignoreResult
        self.autoretryFor = autoretryFor
        self.resultExpires = resultExpires
    }

    /// Seconds before retry number `retries` (0-based), Celery's
    /// `get_exponential_backoff_interval` with full jitter.
    public func backoff(retries: Int, random: Double = Double.random(in: 0...1)) -> Double {
        let ceiling = min(retryBackoffMax, retryBackoff * pow2(retries))
        return retryJitter ? ceiling * random : ceiling
    }

    private func pow2(_ n: Int) -> Double { n >= 60 ? .greatestFiniteMagnitude : Double(1 << n) }
}
