import Foundation

extension TaskFailure {
    /// The failure a Swift error is stored as, shaped as Celery stores a Python exception:
    /// `exc_type` the error's type name (`QuotaExceeded`; generic parameters dropped),
    /// `exc_message` its description (`LocalizedError.errorDescription`, else its
    /// `CustomStringConvertible` description, else `String(describing:)`). A type named as a
    /// Python builtin exception (`ValueError`, `TimeoutError`…) keeps module `builtins`, so a
    /// Python client re-raises the builtin; any other gets module `celeris`, which no Python
    /// process imports, so Celery's `exception_to_python` makes an exception class of that
    /// name (in `celery.exceptions`) and `AsyncResult.get()` raises it. A `TaskFailure` is
    /// itself.
    ///
    ///     let failure = TaskFailure(error: QuotaExceeded(limit: 3))  // QuotaExceeded('over 3')
    public init(error: any Error) {
        if let failure = error as? TaskFailure {
            self = failure
            return
        }
        let name = Self.typeName(of: error)
        self.init(
            type: name, message: Self.message(of: error),
            module: Self.pythonBuiltins.contains(name) ? "builtins" : Self.swiftModule)
    }

    /// The module a Swift error's failure names: not a Python module, so Celery makes a class.
    public static let swiftModule = "celeris"

    /// The name `exc_type` takes for `error`: its type's name without generic parameters
    /// (`Box<Int>` → `Box`); `Exception` if nothing is left.
    public static func typeName(of error: any Error) -> String {
        if let failure = error as? TaskFailure { return failure.type }
        let full = String(describing: Swift.type(of: error))
        let name = full.prefix { $0 != "<" }.trimmingCharacters(in: .whitespaces)
        return name.isEmpty ? "Exception" : name
    }

    /// What `exc_message` holds for `error`: its localized description if it has one, else its description.
    static func message(of error: any Error) -> String {
        if let localized = error as? any LocalizedError, let text = localized.errorDescription { return text }
        return String(describing: error)
    }

    /// Python's builtin exceptions that take one message (what `exc_message` holds): a
    /// failure of such a type re-raises as the builtin in a Python client. Left out: the
    /// ones that are not `Exception`s (`SystemExit`, `KeyboardInterrupt`: raising them in a
    /// client would stop it) and those that take other arguments (`UnicodeDecodeError`,
    /// `ExceptionGroup`), which Celery would make into a plain `Exception`.
    public static let pythonBuiltins: Set<String> = [
        "ArithmeticError", "AssertionError", "AttributeError", "BlockingIOError", "BrokenPipeError", "BufferError",
        "BytesWarning", "ChildProcessError", "ConnectionAbortedError", "ConnectionError", "ConnectionRefusedError",
        "ConnectionResetError", "DeprecationWarning", "EOFError", "EncodingWarning", "EnvironmentError", "Exception",
        "FileExistsError", "FileNotFoundError", "FloatingPointError", "FutureWarning", "IOError", "ImportError",
        "ImportWarning", "IndentationError", "IndexError", "InterruptedError", "IsADirectoryError", "KeyError",
        "LookupError", "MemoryError", "ModuleNotFoundError", "NameError", "NotADirectoryError", "NotImplementedError",
        "OSError", "OverflowError", "PendingDeprecationWarning", "PermissionError", "ProcessLookupError",
        "RecursionError", "ReferenceError", "ResourceWarning", "RuntimeError", "RuntimeWarning", "StopAsyncIteration",
        "StopIteration", "SyntaxError", "SyntaxWarning", "SystemError", "TabError", "TimeoutError", "TypeError",
        "UnboundLocalError", "UnicodeError", "UnicodeWarning", "UserWarning", "ValueError", "Warning",
        "ZeroDivisionError",
    ]
}
