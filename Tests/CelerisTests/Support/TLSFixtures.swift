import FastCore
import Foundation
import XCTest

/// Certificates made with the `openssl` CLI in a temp directory: a CA, a server certificate it
/// signs for `IP:127.0.0.1, DNS:localhost`, one for `DNS:localhost` only, a client certificate
/// (`clientAuth`) it signs, and an unrelated CA (the wrong one to trust).
///
///     let certs = try TLSFixtures()
///     let redis = try TLSRedisServer(certs)
///     let ep = try RedisEndpoint(url: redis.url("ssl_ca_certs=\(certs.caFile)"))
final class TLSFixtures {
    let dir: URL

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("celeris-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try openssl(
            ["req", "-x509"] + ec + [
                "-keyout", path("ca.key"), "-out", caFile, "-days", "2", "-subj", "/CN=Celeris Test CA",
            ])
        try openssl(
            ["req", "-x509"] + ec + [
                "-keyout", path("other.key"), "-out", otherCAFile, "-days", "2", "-subj", "/CN=Other CA",
            ])
        try sign("server", subject: "/CN=127.0.0.1", extensions: "subjectAltName=IP:127.0.0.1,DNS:localhost")
        try sign("localhost", subject: "/CN=localhost", extensions: "subjectAltName=DNS:localhost")
        try sign("client", subject: "/CN=celeris-client", extensions: "extendedKeyUsage=clientAuth")
    }

    deinit { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
    var caFile: String { path("ca.pem") }
    var otherCAFile: String { path("other.pem") }
    /// `<name>.pem` and `<name>.key` for server, localhost, client.
    func cert(_ name: String) -> String { path("\(name).pem") }
    func key(_ name: String) -> String { path("\(name).key") }

    private func sign(_ name: String, subject: String, extensions: String) throws {
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try openssl(["req"] + ec + ["-keyout", key(name), "-out", path("\(name).csr"), "-subj", subject])
        try (extensions + "\n").write(toFile: path("\(name).cnf"), atomically: true, encoding: .utf8)
        try openssl([
            "x509", "-req", "-in", path("\(name).csr"), "-CA", caFile, "-CAkey", path("ca.key"), "-CAcreateserial",
            "-out", cert(name), "-days", "2", "-extfile", path("\(name).cnf"),
        ])
    }

    private func openssl(_ args: [String]) throws {
        let (status, out) = try runTool("/usr/bin/openssl", args)
        if status != 0 { throw TestFailure("openssl \(args.joined(separator: " ")): \(out)") }
    }
}

/// Run a tool to completion; its exit status and combined output.
func runTool(_ executable: String, _ args: [String]) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    p.standardInput = FileHandle.nullDevice
    try withSignalsUnblocked { try p.run() }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A redis-server speaking TLS only (`--port 0`: no plaintext port) on a loopback port, with the
/// fixtures' `server` certificate (or `localhost`, naming only DNS:localhost); `authClients`:
/// clients must present a certificate the CA signed.
final class TLSRedisServer {
    let port: Int
    let certs: TLSFixtures
    private var process: Spawned?

    private let certificate: String
    private let authClients: Bool

    init(_ certs: TLSFixtures, certificate: String = "server", authClients: Bool = false) throws {
        self.certs = certs
        self.certificate = certificate
        self.authClients = authClients
        port = freePort()
        try start()
    }

    /// Start (again, after `stop`) on the same port; returns once redis-cli gets PONG over TLS.
    func start() throws {
        process = try Spawned(
            "/usr/bin/redis-server",
            [
                "--port", "0", "--tls-port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--protected-mode", "no", "--tls-cert-file", certs.cert(certificate), "--tls-key-file",
                certs.key(certificate), "--tls-ca-cert-file", certs.caFile, "--tls-auth-clients",
                authClients ? "yes" : "no",
            ], name: "redis-tls-\(port)")
        // Up when redis-cli (OpenSSL, not Celeris) gets PONG over TLS.
        let up = eventually(timeout: 10) { (try? self.cli(["PING"])) == "PONG" }
        if !up { throw TestFailure("TLS redis-server did not start on \(port): \(process?.log ?? "")") }
    }

    /// `rediss://127.0.0.1:<port>/0?<query>`.
    func url(_ query: String = "", host: String = "127.0.0.1") -> String {
        "rediss://\(host):\(port)/0" + (query.isEmpty ? "" : "?\(query)")
    }

    /// The URL trusting the fixtures' CA (and presenting the client certificate when the server asks for one).
    var trustingURL: String {
        url("ssl_ca_certs=\(certs.caFile)&ssl_certfile=\(certs.cert("client"))&ssl_keyfile=\(certs.key("client"))")
    }

    /// A Celeris client over TLS, trusting the fixtures' CA.
    func client() throws -> RedisConnection { try RedisConnection(endpoint: RedisEndpoint(url: trustingURL)) }

    /// redis-cli over TLS (with the CA and the client certificate); its output, trimmed.
    func cli(_ args: [String]) throws -> String {
        let (status, out) = try runTool(
            "/usr/bin/redis-cli",
            [
                "--tls", "--cacert", certs.caFile, "--cert", certs.cert("client"), "--key", certs.key("client"), "-h",
                "127.0.0.1", "-p", "\(port)",
            ] + args)
        if status != 0 { throw TestFailure("redis-cli \(args): \(out)") }
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func stop() {
        process?.stop()
        process = nil
    }

    deinit { stop() }
}

/// A plain TCP listener on a loopback port of its own (what a `rediss://` link sends to a server
/// that is not one): `acceptAndRead` takes one connection and what it sends first.
final class LoopbackListener {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, len) == 0 && listen(fd, 8) == 0 && getsockname(fd, $0, &len) == 0
            }
        }
        guard bound else {
            close(fd)
            throw TestFailure("cannot listen: errno \(errno)")
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
    }

    deinit { close(fd) }

    func acceptAndRead(timeout: Double) throws -> [UInt8] {
        guard readable(fd, timeout: timeout) else { throw TestFailure("no connection within \(timeout) s") }
        let conn = accept(fd, nil, nil)
        guard conn >= 0 else { throw TestFailure("accept: errno \(errno)") }
        defer { close(conn) }
        guard readable(conn, timeout: timeout) else { throw TestFailure("nothing sent within \(timeout) s") }
        var buf = [UInt8](repeating: 0, count: 4096)
        var n = 0
        repeat { n = recv(conn, &buf, buf.count, 0) } while n < 0 && errno == EINTR
        guard n > 0 else { throw TestFailure("recv: \(n), errno \(errno)") }
        return Array(buf[0..<n])
    }

    /// True once `fd` is readable within `timeout`; poll(2) is never restarted after a
    /// signal, so an EINTR polls again for the time left.
    private func readable(_ fd: Int32, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = Int32(max(0, deadline.timeIntervalSinceNow) * 1000)
            let ready = poll(&pfd, 1, left)
            if ready < 0 && errno == EINTR { continue }
            return ready == 1
        }
    }
}
