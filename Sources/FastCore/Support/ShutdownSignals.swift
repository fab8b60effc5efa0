import Dispatch
import Foundation

/// SIGINT/SIGTERM (and any others named) delivered on a dispatch queue with a
/// running count, so a command can make the first a graceful stop and the
/// second an immediate one. The signals' default actions are off while the
/// object lives; keep it.
///
///     let signals = ShutdownSignals { signo, count in count == 1 ? app.stop() : app.stopNow() }
///     app.run()
///     withExtendedLifetime(signals) {}
public final class ShutdownSignals {
    private let sources: [any DispatchSourceSignal]

    /// `handler(signo, n)` runs for the n-th signal received (of any of `signals`).
    public init(signals: [Int32] = [SIGINT, SIGTERM], _ handler: @escaping @Sendable (Int32, Int) -> Void) {
        let count = LockedBox(0)
        var made: [any DispatchSourceSignal] = []
        for signo in signals {
            signal(signo, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: signo, queue: .global())
            src.setEventHandler {
                let n = count.modify { n in
                    n += 1
                    return n
                }
                handler(signo, n)
            }
            src.resume()
            made.append(src)
        }
        sources = made
    }

    deinit { sources.forEach { $0.cancel() } }
}
