import Foundation

extension RedisEndpoint {
    /// Blocking. The servers a new connection tries, in order: `serversToTry` for a plain endpoint;
    /// for a Sentinel endpoint, the master the sentinels name now (each asked in turn within
    /// `timeoutMs`, at most 1 s), as a plain endpoint with this endpoint's auth, db and TLS. Empty, with the
    /// reason, when no sentinel names one.
    ///
    ///     let (servers, error) = endpoint.connectionCandidates(timeoutMs: 2000)
    public func connectionCandidates(timeoutMs: Int) -> (servers: [RedisEndpoint], error: String?) {
        guard let sentinel else { return (serversToTry, nil) }
        // Each sentinel within a second at most: a dead one must not hold up the next for a link's long timeout.
        switch SentinelClient.master(of: sentinel, timeoutMs: min(timeoutMs, 1000)) {
        case .success(let address):
            // (TLS then checks the address the sentinels gave, or the URL's ssl_server_name.)
            let master = RedisEndpoint(
                host: address.host, port: address.port, db: db, password: password, username: username, tls: tls)
            return ([master], nil)
        case .failure(let error):
            return ([], error.description)
        }
    }
}

/// `connectionCandidates` on a thread, off the loop; `done` runs on the loop (polled every
/// `pollMs`). `cancel()` (or dropping it) means `done` never runs.
///
///     lookup = ServerLookup(endpoint: ep, timeoutMs: 2000, loop: loop) { [weak self] servers, error in … }
final class ServerLookup {
    private var timer: LoopTimer?

    init(
        endpoint: RedisEndpoint, timeoutMs: Int, loop: EventLoop, pollMs: UInt64 = 20,
        _ done: @escaping ([RedisEndpoint], String?) -> Void
    ) {
        let found = LockedBox<([RedisEndpoint], String?)?>(nil)
        let worker = Thread { found.set(endpoint.connectionCandidates(timeoutMs: timeoutMs)) }
        worker.name = "celeris-servers"
        worker.start()
        timer = loop.timer(after: pollMs, repeating: true) { [weak self] in
            guard let self, let result = found.get() else { return }
            self.cancel()
            done(result.0, result.1)
        }
    }

    /// Stop polling: `done` will not run.
    func cancel() { timer?.cancel() }
}
