import FastCore
import Foundation
import XCTest

/// A Redis Sentinel set-up on loopback ports: a master, `replicas` replicas of it (`--replicaof`)
/// and three `redis-sentinel`s monitoring it as `masterName` (quorum 2, down-after 1000 ms,
/// failover-timeout 3000 ms), their config files in a temp dir. `init` returns once every sentinel
/// knows the other two and the replicas, and every replica's link to the master is up, so a
/// failover can happen. Nothing is persisted.
///
///     let cluster = try SentinelCluster()
///     let worker = try Spawned(…, ["-b", cluster.url, …])
///     let old = cluster.killMaster()
///     let new = try cluster.waitForNewMaster(otherThan: old, timeout: 30)
///     cluster.stop()
final class SentinelCluster {
    let masterName: String
    /// The data nodes' ports: the first master, then the replicas.
    let dataPorts: [Int]
    let sentinelPorts: [Int]
    /// With `tls`: the port each sentinel takes TLS on, for the other sentinels (clients use `sentinelPorts`).
    let sentinelTLSPorts: [Int]
    /// `requirepass` on the sentinels (and `sentinel sentinel-pass` between them).
    let sentinelPassword: String?
    /// `requirepass`/`masterauth` on the data nodes (`sentinel auth-pass` for the sentinels).
    let dataPassword: String?
    /// The data nodes speak TLS only (their certificates from these fixtures; the sentinels reach
    /// them over TLS too, and answer clients in plain TCP).
    let tls: TLSFixtures?
    let directory: URL
    private var data: [Int: Spawned] = [:]
    private var sentinels: [Int: Spawned] = [:]

    init(
        masterName: String = "mymaster", replicas: Int = 1, sentinelPassword: String? = nil,
        dataPassword: String? = nil, tls: TLSFixtures? = nil
    ) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-server") else {
            throw XCTSkip("redis-server is not installed (make test installs it)")
        }
        self.masterName = masterName
        self.sentinelPassword = sentinelPassword
        self.dataPassword = dataPassword
        self.tls = tls
        // Distinct ports (two calls of freePort may name the same one).
        var ports: [Int] = []
        while ports.count < replicas + 4 + (tls == nil ? 0 : 3) {
            let p = freePort()
            if !ports.contains(p) { ports.append(p) }
        }
        dataPorts = Array(ports[...replicas])
        sentinelPorts = Array(ports[(replicas + 1)..<(replicas + 4)])
        sentinelTLSPorts = Array(ports[(replicas + 4)...])
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "celeris-sentinel-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        do {
            for (i, port) in dataPorts.enumerated() { try startData(port, replicaOf: i == 0 ? nil : dataPorts[0]) }
            for port in sentinelPorts { try startSentinel(port, monitoring: dataPorts[0]) }
            try waitReady(master: dataPorts[0], timeout: 60)
        } catch {
            stop()
            throw error
        }
    }

    deinit { stop() }

    // MARK: - addresses

    /// The broker URL: every sentinel, the master's name, the sentinel password and `query` (`&`-joined).
    func url(db: Int = 0, query: [String] = []) -> String {
        let auth = dataPassword.map { ":\($0)@" } ?? ""
        var items = ["master_name=\(masterName)"]
        if let sentinelPassword { items.append("sentinel_password=\(sentinelPassword)") }
        if let tls { items.append("ssl_ca_certs=\(tls.caFile)") }
        items += query
        return sentinelPorts.map { "sentinel://\(auth)127.0.0.1:\($0)/\(db)" }.joined(separator: ";") + "?"
            + items.joined(separator: "&")
    }

    var url: String { url() }

    func endpoint(db: Int = 0) throws -> RedisEndpoint { try RedisEndpoint(url: url(db: db)) }

    /// A plain client to a data node (the master's password when set).
    func client(port: Int, timeoutMs: Int = 2000) throws -> RedisConnection {
        try RedisConnection(
            endpoint: RedisEndpoint(
                host: "127.0.0.1", port: port, password: dataPassword, tls: tls.map { RedisTLS(caFile: $0.caFile) }),
            timeoutMs: timeoutMs)
    }

    /// A client to a sentinel (its password when set).
    func sentinelClient(_ i: Int = 0, timeoutMs: Int = 2000) throws -> RedisConnection {
        try RedisConnection(
            endpoint: RedisEndpoint(host: "127.0.0.1", port: sentinelPorts[i], password: sentinelPassword),
            timeoutMs: timeoutMs)
    }

    /// The master's port as sentinel `i` names it now (nil when it does not answer).
    func sentinelMaster(_ i: Int = 0) -> Int? {
        guard let r = try? sentinelClient(i, timeoutMs: 500),
            let reply = try? r.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName),
            let parts = reply.elements, parts.count == 2, let text = parts[1].text
        else { return nil }
        return Int(text)
    }

    /// A data node's `ROLE` (`master`, `slave`), nil when it does not answer within `patience`
    /// seconds (a slow answer on a loaded machine is asked again, not taken for none).
    func role(_ port: Int, patience: Double = 5) -> String? {
        let deadline = Date().addingTimeInterval(patience)
        repeat {
            if let role = (try? client(port: port, timeoutMs: 500).command("ROLE"))?.elements?.first?.text {
                return role
            }
        } while Date() < deadline && isRunning(port)
        return nil
    }

    /// When a link moved to the new master and when the old one was demoted, as poll rounds:
    /// each round checks `moved()` first, then the old master's `ROLE`, until both were seen
    /// or `timeout` passed. `moved < demoted` proves the link moved while the old master still
    /// said master (equal rounds cannot tell the order). nil: not seen in time.
    func movedBeforeDemotion(old: Int, timeout: Double, moved: () -> Bool) -> (moved: Int?, demoted: Int?) {
        var movedRound: Int?
        var demotedRound: Int?
        let deadline = Date().addingTimeInterval(timeout)
        var round = 0
        while (movedRound == nil || demotedRound == nil) && Date() < deadline {
            if movedRound == nil && moved() { movedRound = round }
            if demotedRound == nil && role(old, patience: 1) == "slave" { demotedRound = round }
            round += 1
            Thread.sleep(forTimeInterval: 0.02)
        }
        return (movedRound, demotedRound)
    }

    /// Whether the data node on `port` runs.
    func isRunning(_ port: Int) -> Bool { data[port]?.isRunning ?? false }

    // MARK: - failures

    /// SIGKILL the data node the sentinels name as master now; returns its port.
    @discardableResult
    func killMaster() throws -> Int {
        guard let port = sentinelMaster(), let p = data[port] else {
            throw TestFailure("no sentinel names a running master of \(masterName)")
        }
        kill(p.process.processIdentifier, SIGKILL)
        p.process.waitUntilExit()
        return port
    }

    /// `SENTINEL FAILOVER` (a graceful failover: the old master becomes a replica); returns the old master's port.
    @discardableResult
    func failover() throws -> Int {
        guard let port = sentinelMaster() else { throw TestFailure("no sentinel names a master of \(masterName)") }
        let reply = try sentinelClient().command("SENTINEL", "FAILOVER", masterName)
        guard reply.text == "OK" else { throw TestFailure("SENTINEL FAILOVER answered \(reply)") }
        return port
    }

    /// Wait until every running sentinel names a master other than `old` and that node says
    /// `ROLE` master; returns its port.
    func waitForNewMaster(otherThan old: Int, timeout: Double = 30) throws -> Int {
        var found: Int?
        let done = eventually(timeout: timeout, interval: 0.05) {
            let named = Set(sentinelPorts.indices.map { sentinelMaster($0) })
            guard named.count == 1, let port = named.first ?? nil, port != old, role(port) == "master" else {
                return false
            }
            found = port
            return true
        }
        guard done, let port = found else {
            throw TestFailure(
                "no new master of \(masterName) within \(timeout) s (sentinels say \(sentinelPorts.indices.map { sentinelMaster($0) as Any })); logs in \(TestLogs.shared.directory.path)"
            )
        }
        return port
    }

    /// Start the data node on `port` again (after `killMaster`), as a replica of `replicaOf`.
    func restartData(_ port: Int, replicaOf master: Int) throws {
        data[port]?.stop()
        try startData(port, replicaOf: master)
    }

    // MARK: - processes

    private func startData(_ port: Int, replicaOf master: Int?) throws {
        var args =
            tls.map { certs in
                [
                    "--port", "0", "--tls-port", "\(port)", "--tls-cert-file", certs.cert("server"), "--tls-key-file",
                    certs.key("server"), "--tls-ca-cert-file", certs.caFile, "--tls-auth-clients", "no",
                    "--tls-replication", "yes",
                ]
            } ?? ["--port", "\(port)"]
        args += [
            "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no",
            "--dir", directory.path, "--dbfilename", "dump-\(port).rdb", "--repl-diskless-sync", "yes",
            "--repl-diskless-sync-delay", "0",
        ]
        if let dataPassword { args += ["--requirepass", dataPassword, "--masterauth", dataPassword] }
        if let master { args += ["--replicaof", "127.0.0.1", "\(master)"] }
        data[port] = try Spawned("/usr/bin/redis-server", args, name: "sentinel-data-\(port)")
        let up = eventually(timeout: 10) { role(port) != nil }
        if !up { throw TestFailure("redis-server did not start on \(port): \(data[port]?.log ?? "")") }
    }

    private func startSentinel(_ port: Int, monitoring master: Int) throws {
        var lines = [
            "port \(port)", "bind 127.0.0.1", "protected-mode no", "dir \(directory.path)",
            "sentinel resolve-hostnames no",
            "sentinel monitor \(masterName) 127.0.0.1 \(master) 2",
            "sentinel down-after-milliseconds \(masterName) 1000",
            "sentinel failover-timeout \(masterName) 3000",
            "sentinel parallel-syncs \(masterName) 1",
        ]
        if let dataPassword { lines.append("sentinel auth-pass \(masterName) \(dataPassword)") }
        if let tls, let i = sentinelPorts.firstIndex(of: port) {
            // Sentinels reach each other, as the data nodes, over TLS (on their tls-port, which they announce).
            lines += [
                "tls-port \(sentinelTLSPorts[i])", "tls-replication yes", "tls-cert-file \(tls.cert("server"))",
                "tls-key-file \(tls.key("server"))",
                "tls-ca-cert-file \(tls.caFile)", "tls-auth-clients no",
            ]
        }
        if let sentinelPassword {
            lines += ["requirepass \(sentinelPassword)", "sentinel sentinel-pass \(sentinelPassword)"]
        }
        let conf = directory.appendingPathComponent("sentinel-\(port).conf")
        try (lines.joined(separator: "\n") + "\n").write(to: conf, atomically: true, encoding: .utf8)
        sentinels[port] = try Spawned(
            "/usr/bin/redis-server", [conf.path, "--sentinel"], name: "sentinel-\(port)")
        let i = sentinelPorts.firstIndex(of: port) ?? 0
        let up = eventually(timeout: 10) { (try? sentinelClient(i, timeoutMs: 500).command("PING")) != nil }
        if !up { throw TestFailure("redis-sentinel did not start on \(port): \(sentinels[port]?.log ?? "")") }
    }

    /// Every sentinel knows the others and every replica, and every replica's link is up.
    private func waitReady(master: Int, timeout: Double) throws {
        let replicas = dataPorts.count - 1
        var seen = ""
        let ready = eventually(timeout: timeout, interval: 0.1) {
            for i in sentinelPorts.indices {
                guard let r = try? sentinelClient(i, timeoutMs: 500),
                    let info = try? r.command("SENTINEL", "MASTER", masterName), let fields = info.elements
                else {
                    seen = "sentinel \(sentinelPorts[i]) does not answer SENTINEL MASTER"
                    return false
                }
                var map: [String: String] = [:]
                for k in stride(from: 0, to: fields.count - 1, by: 2) {
                    if let key = fields[k].text { map[key] = fields[k + 1].text }
                }
                guard map["num-other-sentinels"] == "\(sentinelPorts.count - 1)",
                    map["num-slaves"] == "\(replicas)", map["flags"] == "master"
                else {
                    seen = "sentinel \(sentinelPorts[i]): \(map)"
                    return false
                }
            }
            for port in dataPorts.dropFirst() {
                guard let info = try? client(port: port, timeoutMs: 500).command("INFO", "replication").text,
                    info.contains("master_link_status:up")
                else {
                    seen = "replica \(port) link not up"
                    return false
                }
            }
            return true
        }
        if !ready {
            throw TestFailure(
                "the sentinels did not see each other and the replicas within \(timeout) s (last seen: \(seen)); logs in \(TestLogs.shared.directory.path)"
            )
        }
    }

    /// Stop every process and remove the temp dir.
    func stop() {
        for p in sentinels.values { p.stop(grace: 2) }
        for p in data.values { p.stop(grace: 2) }
        sentinels.removeAll()
        data.removeAll()
        try? FileManager.default.removeItem(at: directory)
    }
}
