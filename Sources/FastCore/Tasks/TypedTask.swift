/// Anything with a name and typed arguments/result: a task definition (`CelerisTask`) or a
/// reference to one (`TaskReference`), for apps that send tasks by type.
///
///     let add = TaskReference<AddArguments, Int>("add")
///     let handle = try await client.send(add, AddArguments(x: 2, y: 3))
public protocol TypedTask<Arguments, Output>: Sendable {
    /// What the task takes: a keyed struct (Celery's `args` by field order, `kwargs` by
    /// name), an unkeyed type such as `[Int]` (the `args` list), or `NoArguments`.
    associatedtype Arguments: Codable & Sendable
    /// What the task returns, stored as JSON in its result.
    associatedtype Output: Codable & Sendable
    /// The Celery task name messages carry.
    var name: String { get }
}
