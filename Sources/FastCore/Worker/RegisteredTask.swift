/// A registered task: its function and its options.
public struct RegisteredTask: Sendable {
    public let name: String
    public let options: TaskOptions
    public let function: TaskFunction
}
