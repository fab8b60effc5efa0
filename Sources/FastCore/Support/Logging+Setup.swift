import Logging

/// Log levels as Celery spells them on the command line.
public enum CelerisLogging {
    /// Parse `debug|info|warning|error|critical` (case-insensitive).
    public static func level(_ text: String) -> Logger.Level? {
        switch text.lowercased() {
        case "trace": return .trace
        case "debug": return .debug
        case "info": return .info
        case "warn", "warning": return .warning
        case "error": return .error
        case "critical", "fatal": return .critical
        default: return nil
        }
    }

    /// Route swift-log to stderr once per process and return a logger.
    public static func bootstrap(label: String, level: Logger.Level) -> Logger {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}
