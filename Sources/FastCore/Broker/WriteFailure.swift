/// Why Redis refused a write, when the refusal is the server's state and not the
/// command: out of memory under `noeviction` (`OOM`), a replica after a failover
/// (`READONLY`), a dataset being loaded (`LOADING`), a busy script (`BUSY`), and the
/// like. Such a write is sent again later, its deliveries kept; any other error reply
/// (a command's own fault, which would fail again) is only logged. In a transaction
/// the refusal comes as the queued command's reply, and EXEC's is `EXECABORT`.
///
///     WriteFailure(errors: ["OOM command not allowed…", "EXECABORT Transaction discarded…"])?.reason  // "oom"
struct WriteFailure: Equatable {
    /// The metric label: the error's code in lower case (`oom`, `readonly`, `loading`…).
    let reason: String
    /// The first such error reply, as Redis sent it.
    let message: String

    /// The error codes that mean "not now": the same write succeeds once the server recovers.
    static let transient: Set<Substring> = [
        "OOM", "READONLY", "LOADING", "BUSY", "MASTERDOWN", "NOREPLICAS", "MISCONF", "TRYAGAIN", "CLUSTERDOWN",
    ]

    /// The transient failure among a write's error replies; nil when there is none.
    init?(errors: [String]) {
        for e in errors {
            let code = e.prefix { $0 != " " }
            if Self.transient.contains(code) {
                reason = code.lowercased()
                message = e
                return
            }
        }
        return nil
    }
}
