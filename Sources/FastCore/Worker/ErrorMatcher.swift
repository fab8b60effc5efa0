/// Which errors a task retries on its own (an entry of `TaskOptions.autoretryFor`, Celery's
/// `autoretry_for`): by Swift type, or by the name Celery reports (`exc_type`).
///
///     TaskOptions(maxRetries: 5, autoretryFor: [.type(URLError.self), .named("IOError")])
public struct ErrorMatcher: Sendable {
    private let test: @Sendable (any Error) -> Bool

    /// A matcher deciding with `test`.
    ///
    ///     ErrorMatcher { ($0 as? HTTPError)?.status == 503 }
    public init(_ test: @escaping @Sendable (any Error) -> Bool) { self.test = test }

    /// Whether `error` is one this matcher lists.
    public func matches(_ error: any Error) -> Bool { test(error) }

    /// Errors of type `E` (or, for classes, a subclass of it: Python's `isinstance`).
    ///
    ///     .type(QuotaExceeded.self)
    public static func type<E: Error>(_ type: E.Type) -> ErrorMatcher { ErrorMatcher { $0 is E } }

    /// Errors whose `exc_type` is `name`: a `TaskFailure` of that type, or a Swift error whose
    /// type is so named (`TaskFailure.typeName(of:)`). `Exception` matches every error, as
    /// Python's `autoretry_for=(Exception,)` does.
    ///
    ///     .named("ConnectionError")
    public static func named(_ name: String) -> ErrorMatcher {
        if name == "Exception" { return ErrorMatcher { _ in true } }
        return ErrorMatcher { TaskFailure.typeName(of: $0) == name }
    }
}
