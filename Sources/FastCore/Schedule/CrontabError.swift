/// Why a crontab expression was refused, or why no next run could be found.
/// Every input Celery 5.7's `crontab` rejects (with `ValueError` or `ParseException`) is refused with one of these.
///
///     do { _ = try Crontab(expression: "61 * * * *") } catch let e as CrontabError { print(e.message) }
public struct CrontabError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The field the error is about (`minute`, `hour`, `day_of_week`, `day_of_month`, `month_of_year`, or `expression`).
    public let field: String
    /// What was wrong, in words close to Celery's message.
    public let message: String

    /// An error about `field`.
    ///
    ///     CrontabError(field: "minute", message: "empty part")
    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    /// `field: message`.
    public var description: String { "\(field): \(message)" }
}
