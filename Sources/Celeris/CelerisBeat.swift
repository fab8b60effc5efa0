import ArgumentParser
import FastCore
import Foundation

/// The periodic-task scheduler process: the whole `celeris-beat` command line (schedule file,
/// run-time entries, leader lease, metrics, signals and warm hand-over), to run as is or from
/// your own executable.
///
///     @main struct Beat {
///         static func main() { CelerisBeat.main() }
///     }
///     // or: CelerisBeat.main(arguments: ["-s", "schedule.json", "--lease-ms", "5000"])
public enum CelerisBeat {
    /// Parse the command line (or `arguments`, without the program name), run the scheduler
    /// until SIGTERM/SIGINT, hand the leadership over and exit (0; 1 when the schedule file does
    /// not parse at start).
    public static func main(arguments: [String]? = nil) -> Never {
        BeatCommand.main(arguments)
        exit(0)
    }
}
