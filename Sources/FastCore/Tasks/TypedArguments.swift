/// Celery's `args`/`kwargs` to and from a `Codable` arguments type.
///
///     struct AddArguments: Codable, Sendable { var x: Int; var y: Int? }
///     let a = try TypedArguments.decode(AddArguments.self, args: [2], kwargs: [("y", 3)], task: "add")
///     let (args, kwargs) = try TypedArguments.encode(a)   // [], [("x", 2), ("y", 3)]
///
/// Decoding binds as Python binds a call to `def add(x, y=None)`: positional arguments go
/// to the fields in the order the type decodes them (declaration order for a synthesized
/// `init(from:)`), keyword arguments by name; optional fields may be left out (a Python
/// parameter defaulting to `None`; a field with a default value is still required by a
/// synthesized `init(from:)`: make it optional). A dictionary type (`[String: JSON]`)
/// takes keyword arguments only, as `**kwargs`. An unkeyed
/// type (`[Int]`) takes the `args` list; a single-value type (`Int`, `JSON`) is one
/// parameter named `value`. What does not fit is a `TaskFailure` with Python's words:
///
/// - `add() missing 1 required positional argument: 'y'`
/// - `add() takes 2 positional arguments but 3 were given`
/// - `add() got an unexpected keyword argument 'z'`
/// - `add() got multiple values for argument 'x'`
/// - `add() argument 'x' must be int, not str` (a float where an integer is wanted is
///   refused too, even `3.0`; a bool is not an int)
/// - ValueError `add() argument 'x' 3000000000 is out of range for Int32`
public enum TypedArguments {
    /// `args` and `kwargs` of a call to `task` as a `T`, or the `TypeError` Python would raise.
    public static func decode<T: Decodable>(
        _ type: T.Type, args: [JSON], kwargs: [(key: String, value: JSON)], task: String
    ) throws(TaskFailure) -> T {
        let binding = ArgumentBinding(task: task, args: args, kwargs: kwargs)
        var decoded: T?
        var thrown: (any Error)?
        do {
            if SpecialValues.handles(type) {
                binding.shape = .keyed
                decoded = try ArgumentsDecoder.value(type, JSONPathKey(stringValue: "value"), binding)
            } else {
                decoded = try T(from: ArgumentsDecoder(binding: binding))
            }
        } catch is ArgumentBinding.Stop {
        } catch {
            thrown = error
        }
        if let failure = binding.failure() { throw failure }
        if let thrown { throw binding.failure(for: thrown) }
        guard let decoded else { throw binding.typeError("arguments could not be decoded") }
        return decoded
    }

    /// A value's fields as Celery's `kwargs` (a keyed type, in the order it encodes them), its
    /// items as `args` (an unkeyed type), or itself as the one positional argument.
    public static func encode(_ arguments: some Encodable) throws -> (
        args: [JSON], kwargs: [(key: String, value: JSON)]
    ) {
        let (json, shape) = try JSONValueEncoder.encodeTop(arguments)
        switch (shape, json) {
        case (.keyed, .object(let pairs)): return ([], pairs)
        case (.unkeyed, .array(let items)): return (items, [])
        default: return ([json], [])
        }
    }
}
