/// A task's name with its argument and result types, for an app that sends a task it
/// does not run (the worker that runs it defines the matching `CelerisTask`).
///
///     let add = TaskReference<AddArguments, Int>("add")
public struct TaskReference<Arguments: Codable & Sendable, Output: Codable & Sendable>: TypedTask {
    /// The task's registered name, as sent in the message's `task` header.
    ///
    ///     add.name  // "add"
    public let name: String
    /// A reference to the task registered as `name` (typed by the generic parameters).
    ///
    ///     let add = TaskReference<AddArguments, Int>("add")
    public init(_ name: String) { self.name = name }
}
