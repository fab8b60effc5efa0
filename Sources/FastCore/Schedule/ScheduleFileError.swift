/// Why a schedule file was refused: where (`path`, e.g. `beat_schedule.nightly.options.priority`)
/// and what is wrong with it.
///
///     do { _ = try ScheduleFile.parse(text) } catch { print(error) }  // "beat_schedule.x.schedule: ..."
public struct ScheduleFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The dotted path of the offending part (`""`: the whole file).
    public let path: String
    public let message: String

    /// An error at `path`.
    ///
    ///     ScheduleFileError(path: "beat_schedule.x.task", message: "must be a non-empty string")
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}
