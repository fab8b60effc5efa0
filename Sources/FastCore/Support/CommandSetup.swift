import Foundation
import Logging

/// The set-up both executables share: the log level checked and logging routed
/// to stderr, the broker URL from the flag or `$CELERIS_BROKER_URL` (else
/// `redis://127.0.0.1:6379/0`), and SIGPIPE ignored (a write to a closed socket
/// is an error the caller handles, not a reason to die).
///
///     let setup = try CommandSetup(label: "celeris-frontend", loglevel: "info", broker: nil)
///     setup.logger.info("broker \(setup.endpoint)")
public struct CommandSetup {
    /// A flag the command cannot run with; `description` is the message for the user.
    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    public let endpoint: RedisEndpoint
    public let logger: Logger
    public let environment: [String: String]

    /// Parse the broker, bootstrap logging (once per process) and ignore SIGPIPE.
    public init(
        label: String, loglevel: String, broker: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(Invalid) {
        endpoint = try Self.endpoint(broker: broker, environment: environment)
        guard let level = CelerisLogging.level(loglevel) else {
            throw Invalid(description: "unknown --loglevel \(loglevel)")
        }
        self.environment = environment
        logger = CelerisLogging.bootstrap(label: label, level: level)
        signal(SIGPIPE, SIG_IGN)
    }

    /// The broker: `broker` (the -b flag), else `$CELERIS_BROKER_URL`, else local Redis db 0.
    public static func endpoint(
        broker: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(Invalid) -> RedisEndpoint {
        do { return try RedisEndpoint.broker(flag: broker, environment: environment) } catch {
            throw Invalid(description: "\(error)")
        }
    }

    /// Nil when `loglevel` is one `CelerisLogging.level` reads, else the message for the user.
    public static func checkLogLevel(_ loglevel: String) -> String? {
        CelerisLogging.level(loglevel) == nil ? "unknown --loglevel \(loglevel)" : nil
    }
}
