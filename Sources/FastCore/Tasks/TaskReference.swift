/// A task's name with its argument and result types, for an app that sends a task it
/// does not run (the worker that runs it defines the matching `CelerisTask`).
///
///     let add = TaskReference<AddArguments, Int>("add")
public struct TaskReference<Arguments: Codable & Sendable, Output: Codable & Sendable>: TypedTask {
    public let name: String
    public init(_ name: String) { self.name = name }
}
