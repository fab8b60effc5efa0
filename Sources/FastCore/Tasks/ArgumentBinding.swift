/// How a task's `args` and `kwargs` bind to the fields its arguments type asks for, as
/// Python binds a call to a function's parameters: a field takes the next positional
/// argument when it is first asked for (a synthesized `init(from:)` asks in declaration
/// order), else the keyword argument of its name. It keeps what went wrong, so that once
/// the type has asked for everything the failure Python would raise first is reported
/// (`failure()`), in Python's words.
final class ArgumentBinding {
    let task: String
    let args: [JSON]
    let kwargs: [(key: String, value: JSON)]

    /// What the arguments type asked the decoder for at the top.
    enum Shape { case none, keyed, list }
    var shape = Shape.none

    struct Parameter {
        var name: String
        var required: Bool
        /// Which positional argument it takes; nil when it is keyword-only.
        var position: Int?
    }
    private(set) var parameters: [Parameter] = []
    private var positionalCount = 0
    /// Once the type listed the keys (`allKeys`, as a dictionary does), new parameters are keyword-only.
    var keywordOnly = false
    /// Required parameters with no value, in the order asked.
    private(set) var missing: [String] = []
    /// The first value that did not fit.
    private(set) var valueError: (any Error)?
    /// True when a stand-in value could not be made, so not every parameter was asked for.
    private(set) var incomplete = false

    /// Thrown to end the decode when it cannot go on with a stand-in value.
    struct Stop: Error {}

    init(task: String, args: [JSON], kwargs: [(key: String, value: JSON)]) {
        self.task = task
        self.args = args
        self.kwargs = kwargs
    }

    /// The value bound to parameter `name` (registered when first asked for), or nil.
    func bind(_ name: String, required: Bool) -> JSON? {
        let i: Int
        if let found = parameters.firstIndex(where: { $0.name == name }) {
            i = found
            if required { parameters[i].required = true }
        } else {
            var position: Int?
            if !keywordOnly {
                position = positionalCount
                positionalCount += 1
            }
            parameters.append(Parameter(name: name, required: required, position: position))
            i = parameters.count - 1
        }
        if let p = parameters[i].position, p < args.count { return args[p] }
        return kwargs.last(where: { $0.key == name })?.value
    }

    func recordMissing(_ name: String) {
        if !missing.contains(name) { missing.append(name) }
    }

    func record(_ error: any Error) {
        if valueError == nil { valueError = error }
    }

    /// A stand-in for a value that is missing or did not fit, so the decode goes on.
    func placeholder<T: Decodable>(_ type: T.Type, _ codingPath: [any CodingKey]) throws -> T {
        do {
            return try PlaceholderDecoder.make(type, codingPath: codingPath)
        } catch {
            incomplete = true
            throw Stop()
        }
    }

    /// What Python would raise for this call, checked in CPython's order: keyword arguments
    /// (unknown, or given by position too), too many positional arguments, missing ones,
    /// then the first value that did not fit.
    func failure() -> TaskFailure? {
        if shape != .list {
            for (key, _) in kwargs {
                if let p = parameters.first(where: { $0.name == key }) {
                    if let position = p.position, position < args.count {
                        return typeError("got multiple values for argument '\(key)'")
                    }
                } else if !incomplete {
                    return typeError("got an unexpected keyword argument '\(key)'")
                }
            }
            if !incomplete && args.count > positionalCount {
                let positional = parameters.filter { $0.position != nil }
                let atLeast = positional.filter(\.required).count
                let sig = atLeast < positionalCount ? "from \(atLeast) to \(positionalCount)" : "\(positionalCount)"
                let plural = atLeast < positionalCount || positionalCount != 1 ? "s" : ""
                return typeError(
                    "takes \(sig) positional argument\(plural) but \(args.count) \(args.count == 1 ? "was" : "were") given"
                )
            }
            if !missing.isEmpty {
                let names = missing.map { "'\($0)'" }
                let list: String
                switch names.count {
                case 1: list = names[0]
                case 2: list = "\(names[0]) and \(names[1])"
                default: list = names.dropLast().joined(separator: ", ") + ", and " + (names.last ?? "")
                }
                return typeError(
                    "missing \(names.count) required positional argument\(names.count == 1 ? "" : "s"): \(list)")
            }
        }
        return valueError.map(failure(for:))
    }

    func typeError(_ text: String) -> TaskFailure { TaskFailure(type: "TypeError", message: "\(task)() \(text)") }

    /// `error`, from decoding one argument, as the task's failure.
    func failure(for error: any Error) -> TaskFailure {
        switch error {
        case let failure as TaskFailure: return failure
        case let e as ArgumentValueError:
            return TaskFailure(type: e.pythonException, message: "\(task)() \(label(e.path)) \(e.text)")
        case let e as DecodingError:
            return failure(for: ArgumentValueError(e))
        default:
            return TaskFailure(type: "ValueError", message: "\(task)() arguments are invalid: \(error)")
        }
    }

    /// `argument 'x'`, `argument 'point.x'`, `argument 2` (the second of a list), `arguments`.
    private func label(_ path: [JSONPathKey]) -> String {
        guard let first = path.first else { return "arguments" }
        if shape == .list, let i = first.intValue {
            let rest = JSONPathKey.render(Array(path.dropFirst()))
            return rest.isEmpty ? "argument \(i + 1)" : "argument \(i + 1) at '\(rest)'"
        }
        return "argument '\(JSONPathKey.render(path))'"
    }
}

extension ArgumentValueError {
    /// A `DecodingError` a type's own `init(from:)` threw.
    init(_ error: DecodingError) {
        switch error {
        case .typeMismatch(let type, let c):
            self.init(c.codingPath, .invalid("expected \(type): \(c.debugDescription)"))
        case .valueNotFound(_, let c):
            self.init(c.codingPath, .invalid(c.debugDescription))
        case .keyNotFound(let key, let c):
            self.init(c.codingPath, .missingKey(key.stringValue))
        case .dataCorrupted(let c):
            self.init(c.codingPath, .invalid(c.debugDescription))
        @unknown default:
            self.init([], .invalid("\(error)"))
        }
    }
}
