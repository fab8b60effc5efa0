import FastCore
import Foundation
import Logging
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Redis links facing a server that says too much or refuses: an array header claiming
/// hundreds of millions of elements (12 bytes) must not make a client allocate gigabytes; a TLS
/// link that wrote one large command keeps working for many small ones after it; a refused
/// TLS handshake with verification off is not blamed on certificate verification.
final class HostileServerTests: XCTestCase {
    /// The process's resident set (VmRSS), in bytes.
    private func residentBytes() throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kb = Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "")
        else { throw TestFailure("no VmRSS in /proc/self/status") }
        return kb * 1024
    }

    /// A header `*388888888\r\n` answering a RedisConnection's command: the call throws a
    /// protocol error naming the count, and the process does not grow by the ~3 GB the count
    /// implies. A count just under the limit (2^27 - 1) costs no resident memory until elements
    /// come. Arrays a real server sends (LRANGE of 100,000 elements) still come whole.
    func testHugeArrayHeaderIsRefusedWithoutAllocating() throws {
        for count in ["388888888", "2147483647"] {
            let header = "*\(count)\r\n"
            let server = try HostileListener(answer: Array(header.utf8))
            defer { server.stop() }
            let before = try residentBytes()
            let connection = try RedisConnection(
                endpoint: RedisEndpoint(host: "127.0.0.1", port: server.port), timeoutMs: 5000, readTimeoutMs: 5000)
            XCTAssertThrowsError(try connection.command("LRANGE", "l", "0", "-1")) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("Protocol error"), "\(header): \(text)")
                XCTAssertTrue(
                    text.contains("array of \(count) elements"), "\(header): \(text)")
            }
            let grown = try residentBytes() - before
            XCTAssertLessThan(grown, 100 << 20, "\(header): RSS grew by \(grown >> 20) MB")
        }

        // Just under the limit: accepted, but its 1 GB element vector stays untouched (nothing is
        // resident until elements arrive, and none do: the read times out).
        let server = try HostileListener(answer: Array("*134217727\r\n".utf8))
        defer { server.stop() }
        let before = try residentBytes()
        let connection = try RedisConnection(
            endpoint: RedisEndpoint(host: "127.0.0.1", port: server.port), timeoutMs: 5000, readTimeoutMs: 1000)
        XCTAssertThrowsError(try connection.command("LRANGE", "l", "0", "-1"))
        let grown = try residentBytes() - before
        XCTAssertLessThan(grown, 100 << 20, "*134217727: RSS grew by \(grown >> 20) MB")

        let redis = try RedisServer()
        defer { redis.stop() }
        let client = try RedisConnection(endpoint: redis.endpoint)
        let values = (0..<100_000).map { "v\($0)" }
        var commands: [[String]] = []
        for start in stride(from: 0, to: values.count, by: 10_000) {
            commands.append(["RPUSH", "big"] + values[start..<start + 10_000])
        }
        let pushed = try client.pipeline(commands)
        XCTAssertEqual(pushed.last?.integer, 100_000)
        let all = try client.command("LRANGE", "big", "0", "-1")
        XCTAssertEqual(all.elements?.count, 100_000)
        XCTAssertEqual(all.elements?.first?.text, "v0")
        XCTAssertEqual(all.elements?.last?.text, "v99999")
    }

    /// An AsyncRedis link over TLS that sent one 16 MB SET answers 2,000 PINGs sent one after
    /// another (each its own flush through the TLS write buffer), then the value's length.
    func testTLSLinkAfterLargeCommandKeepsWorking() throws {
        let certs = try TLSFixtures()
        let redis = try TLSRedisServer(certs)
        defer { redis.stop() }
        let link = try LinkOnLoop(endpoint: RedisEndpoint(url: redis.trustingURL))
        defer { link.stop() }
        XCTAssertTrue(eventually(timeout: 10) { link.isConnected }, "no TLS link: \(link.lastError ?? "")")

        let big = String(repeating: "x", count: 16 << 20)
        let set = LockedBox<String?>(nil)
        try link.onLoop { _ = link.redis.send(["SET", "big", big]) { set.set($0?.text ?? "nil") } }
        XCTAssertTrue(eventually(timeout: 30) { set.get() != nil })
        XCTAssertEqual(set.get(), "OK")

        let pongs = LockedBox(0)
        let failed = LockedBox(false)
        let total = 2_000
        try link.onLoop {
            func next() {
                let sent = link.redis.send(["PING"]) { reply in
                    guard reply?.text == "PONG" else { return failed.set(true) }
                    pongs.modify { $0 += 1 }
                    if pongs.get() < total { next() }
                }
                if !sent { failed.set(true) }
            }
            next()
        }
        XCTAssertTrue(eventually(timeout: 120) { pongs.get() == total || failed.get() }, "\(pongs.get()) PONGs")
        XCTAssertFalse(failed.get(), "a PING failed after \(pongs.get()) PONGs: \(link.lastError ?? "")")
        XCTAssertEqual(pongs.get(), total)

        let length = LockedBox<Int64?>(nil)
        try link.onLoop { _ = link.redis.send(["STRLEN", "big"]) { length.set($0?.integer ?? -1) } }
        XCTAssertTrue(eventually(timeout: 10) { length.get() != nil })
        XCTAssertEqual(length.get(), Int64(16 << 20))
    }

    /// A TLS 1.2 redis-server requiring client certificates, and an AsyncRedis link with
    /// `ssl_cert_reqs=none` and no certificate: the server refuses the handshake; the link's
    /// error names the handshake and the server's alert, never "certificate verify failed"
    /// (the client verified nothing).
    func testRefusedHandshakeWithoutVerificationIsNotBlamedOnVerification() throws {
        let certs = try TLSFixtures()
        let port = freePort()
        let server = try Spawned(
            "/usr/bin/redis-server",
            [
                "--port", "0", "--tls-port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--protected-mode", "no", "--tls-cert-file", certs.cert("server"), "--tls-key-file",
                certs.key("server"), "--tls-ca-cert-file", certs.caFile, "--tls-auth-clients", "yes",
                "--tls-protocols", "TLSv1.2",
            ], name: "redis-tls12-\(port)")
        defer { server.stop() }
        let up = eventually(timeout: 10) {
            let (status, out) =
                (try? runTool(
                    "/usr/bin/redis-cli",
                    [
                        "--tls", "--cacert", certs.caFile, "--cert", certs.cert("client"), "--key", certs.key("client"),
                        "-h", "127.0.0.1", "-p", "\(port)", "PING",
                    ])) ?? (1, "")
            return status == 0 && out.contains("PONG")
        }
        XCTAssertTrue(up, "TLS 1.2 redis-server did not start: \(server.log)")

        let link = try LinkOnLoop(endpoint: RedisEndpoint(url: "rediss://127.0.0.1:\(port)/0?ssl_cert_reqs=none"))
        defer { link.stop() }
        XCTAssertTrue(eventually(timeout: 10) { link.lastError != nil }, "the link never failed")
        let error = link.lastError ?? ""
        XCTAssertFalse(error.contains("certificate verify failed"), error)
        XCTAssertTrue(error.contains("alert handshake failure"), error)
        XCTAssertTrue(error.hasPrefix("TLS handshake with 127.0.0.1:\(port) failed: "), error)
        XCTAssertFalse(link.isConnected)
    }
}

/// One connection's worth of hostile server: a loopback listener that answers the first bytes
/// of every connection with `answer` and then keeps the connection open, saying nothing more.
private final class HostileListener: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let sockets = LockedBox<(open: [Int32], stopped: Bool)>(([], false))
    private let answer: [UInt8]

    init(answer: [UInt8]) throws {
        self.answer = answer
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 8) == 0 else {
            close(fd)
            throw TestFailure("hostile listener: bind/listen failed")
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &len) }
        }
        listener = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
        Thread { [self] in serve() }.start()
    }

    /// Accepts until `stop()`; this thread alone closes the sockets, so it never uses a
    /// number after it was closed (and possibly reused by another test's socket).
    private func serve() {
        defer {
            // Under the lock that `stop()` shuts them under: never a closed number.
            sockets.modify { state in
                state.stopped = true
                close(listener)
                for s in state.open { close(s) }
                state.open.removeAll()
            }
        }
        while true {
            let c = accept(listener, nil, nil)
            if c < 0 && (errno == EINTR || errno == ECONNABORTED) { continue }
            if c < 0 { return }
            let kept = sockets.modify { state -> Bool in
                if !state.stopped { state.open.append(c) }
                return !state.stopped
            }
            guard kept else {
                close(c)
                return
            }
            var buf = [UInt8](repeating: 0, count: 4096)
            guard recv(c, &buf, buf.count, 0) > 0 else { continue }
            _ = answer.withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
    }

    /// Hang up on every connection and stop accepting (the serve thread closes them).
    func stop() {
        sockets.modify { state in
            guard !state.stopped else { return }
            state.stopped = true
            for s in state.open { shutdown(s, Int32(SHUT_RDWR)) }
            shutdown(listener, Int32(SHUT_RDWR))  // wakes accept (EINVAL)
        }
    }
}

/// An AsyncRedis on an event loop of its own thread; `onLoop` runs a job there.
private final class LinkOnLoop: @unchecked Sendable {
    let loop: EventLoop
    let redis: AsyncRedis
    private let jobs = LockedBox<[@Sendable () -> Void]>([])
    private let stopRequested = LockedBox(false)
    private let finished = DispatchSemaphore(value: 0)
    private let connected = LockedBox(false)
    private let error = LockedBox<String?>(nil)

    init(endpoint: RedisEndpoint) throws {
        var logger = Logger(label: "hostile-server-test")
        logger.logLevel = .critical
        loop = try EventLoop()
        redis = AsyncRedis(loop: loop, endpoint: endpoint, logger: logger)
        let thread = Thread { [self] in
            let poll = loop.timer(after: 1, repeating: true) { [self] in
                for job in jobs.exchange([]) { job() }
                connected.set(redis.isConnected)
                error.set(redis.lastError)
                if stopRequested.get() { loop.stop() }
            }
            redis.start()
            loop.run()
            poll.cancel()
            redis.close()
            finished.signal()
        }
        thread.start()
    }

    var isConnected: Bool { connected.get() }
    var lastError: String? { error.get() }

    /// Queue `body` for the loop thread; throws when it has not run within 30 s.
    func onLoop(_ body: @escaping @Sendable () -> Void) throws {
        let done = DispatchSemaphore(value: 0)
        jobs.modify {
            $0.append {
                body()
                done.signal()
            }
        }
        guard done.wait(timeout: .now() + 30) == .success else { throw TestFailure("the loop did not run a job") }
    }

    func stop() {
        stopRequested.set(true)
        _ = finished.wait(timeout: .now() + 10)
    }
}
