/// An error a task ends with, shaped like a Python exception so a Python
/// client's `AsyncResult.get()` re-raises it.
///
///     throw TaskFailure(type: "ValueError", message: "boom")
public struct TaskFailure: Error, Sendable, CustomStringConvertible {
    public var type: String
    public var module: String
    public var arguments: [JSON]
    public init(type: String, message: String, module: String = "builtins") {
        self.init(type: type, arguments: [.string(message)], module: module)
    }
    public init(type: String, arguments: [JSON], module: String = "builtins") {
        self.type = type
        self.arguments = arguments
        self.module = module
    }
    public var description: String {
        "\(type)(\(arguments.map(PythonRepr.repr).joined(separator: ", ")))"
    }
    /// A short Python-style traceback naming the task.
    public func traceback(task: String) -> String {
        "Traceback (most recent call last):\n  Celeris task \(task)\n\(type): \(TaskFailureText.text(resultJSON, type: type))\n"
    }

    /// `{"exc_type", "exc_message", "exc_module"}` as the Redis backend stores it.
    public var resultJSON: JSON {
        ["exc_type": .string(type), "exc_message": .array(arguments), "exc_module": .string(module)]
    }
}
