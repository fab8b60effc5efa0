import ArgumentParser
import FastCore
import Foundation

/// A worker process around your tasks: the whole `celeris-worker` command line (every
/// flag, remote control, events, metrics, signals, warm and cold shutdown), with the
/// tasks you pass registered.
///
///     @main struct ThumbnailWorker {
///         static func main() { CelerisWorker.main(tasks: [resize, BuiltinTasks.all]) }
///     }
public enum CelerisWorker {
    /// Parse the command line (or `arguments`), run the worker until it stops, and exit.
    /// `routes` are where tasks sent by these tasks go when no `--route` says otherwise.
    public static func main(
        tasks: [any RegistrableTask], routes: TaskRoutes = TaskRoutes(), arguments: [String]? = nil
    ) -> Never {
        var registry = TaskRegistry()
        for task in tasks { task.register(into: &registry) }
        WorkerCommand.tasks.set((registry, routes))
        WorkerCommand.main(arguments)
        exit(0)
    }
}
