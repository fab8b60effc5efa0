import FastCore
import Foundation
import XCTest

/// The blocking (worker) Redis link over TLS, against a TLS-only redis-server (`--port 0`):
/// a worker drains over `rediss://` through sockets and through io_uring; the certificate,
/// host name and client certificate are checked as the URL's `ssl_*` options ask; a `rediss://`
/// URL never falls back to plaintext; Python Celery sends over TLS to a Celeris worker.
final class TLSTests: XCTestCase {
    private var certs: TLSFixtures!

    override func setUpWithError() throws { certs = try TLSFixtures() }
    override func tearDown() { certs = nil }

    private func thrownText(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// A celeris-worker on `url` with `--io io`, returned once it says it is connected.
    private func worker(_ url: String, io: String) throws -> Spawned {
        let p = try Spawned(
            try TestPaths.executable("celeris-worker"), ["-b", url, "-c", "2", "--io", io, "--loglevel", "debug"],
            env: ["CELERIS_STEP_SECONDS": "0"], name: "worker-tls-\(io)")
        let up = eventually(timeout: 15) { p.log.contains("connected to") }
        if !up { throw TestFailure("worker did not connect over TLS: \(p.log)") }
        return p
    }

    /// 300 `add` tasks queued over TLS are run by a worker whose broker link is TLS, once through
    /// sockets and once through io_uring; every result is right and the Redis state after is the
    /// results and the queue's bindings, nothing held.
    func testWorkerDrainsOverTLSThroughSocketsAndIoUring() throws {
        for io in ["socket", "uring"] {
            let redis = try TLSRedisServer(certs)
            let client = try redis.client()
            XCTAssertEqual(try client.keyspace(), [:], io)
            let messages = (0..<300).map { TaskMessage(task: "add", args: [.int(Int64($0)), .int(Int64($0))]) }
            var producer = TaskProducer()
            for reply in try client.pipeline(messages.flatMap { producer.sendCommands(for: $0) }) {
                XCTAssertNil(reply.errorMessage, io)
            }
            let p = try worker(redis.trustingURL, io: io)
            XCTAssertTrue(p.log.contains(io == "uring" ? "(io_uring)" : "(socket)"), p.log)
            let drained = eventually(timeout: 30) { (try? client.resultCount()) == 300 }
            XCTAssertTrue(drained, "\(io): \((try? client.resultCount()) ?? -1) results of 300\n\(p.log)")
            for (i, m) in messages.enumerated() {
                let record = try client.result(m.id)
                XCTAssertEqual(record?["status"], "SUCCESS", io)
                XCTAssertEqual(record?["result"], .int(Int64(2 * i)), io)
            }
            p.stop()
            let results = Set(messages.map { ResultRecord.key($0.id) })
            let keys = try client.keys()
            XCTAssertEqual(keys.subtracting(results), ["_kombu.binding.celery", "_kombu.binding_permanent.celery"], io)
            XCTAssertEqual(keys.intersection(results).count, 300, io)
            XCTAssertEqual(try client.command("LLEN", "celery").integer, 0, io)
            redis.stop()
        }
    }

    /// The TLS redis-server restarts under a worker (its data gone): the worker's links connect and
    /// handshake again, and it runs what is queued on the new server.
    func testWorkerReconnectsOverTLSAfterARestart() throws {
        let redis = try TLSRedisServer(certs)
        func queue(_ n: Int) throws -> [TaskMessage] {
            let messages = (0..<n).map { TaskMessage(task: "add", args: [.int(Int64($0)), 1]) }
            var producer = TaskProducer()
            for reply in try redis.client().pipeline(messages.flatMap { producer.sendCommands(for: $0) }) {
                XCTAssertNil(reply.errorMessage)
            }
            return messages
        }
        let first = try queue(50)
        let p = try worker(redis.trustingURL, io: "uring")
        XCTAssertTrue(eventually(timeout: 30) { (try? redis.client().resultCount()) == 50 }, p.log)
        redis.stop()
        try redis.start()
        XCTAssertEqual(try redis.client().keys(), [])
        let second = try queue(50)
        let done = eventually(timeout: 60, interval: 0.1) { (try? redis.client().resultCount()) == 50 }
        XCTAssertTrue(done, p.log)
        let client = try redis.client()
        for (i, m) in second.enumerated() { XCTAssertEqual(try client.result(m.id)?["result"], .int(Int64(i + 1))) }
        XCTAssertNil(try client.result(first[0].id))
        XCTAssertTrue(p.isRunning)
        p.stop()
    }

    /// Replies larger than one receive buffer (1 MB values: many TLS records, more plaintext than
    /// the reader's feed holds at once) and a pipeline of 2,000 commands, through both paths.
    func testLargeRepliesAndLongPipelinesOverTLS() throws {
        let redis = try TLSRedisServer(certs)
        let big = String(repeating: "0123456789abcdef", count: 65_536)
        for io in [IOMode.socket, .uring] {
            let c = try RedisConnection(endpoint: RedisEndpoint(url: redis.trustingURL), io: io)
            XCTAssertEqual(c.usesUring, io == .uring)
            XCTAssertEqual(try c.command("SET", "big", big).text, "OK")
            XCTAssertEqual(try c.command("GET", "big").text, big)
            let counter = "n-\(io)"
            let incrs: [[String]] = (0..<2000).map { _ in ["INCR", counter] }
            let replies = try c.pipeline(incrs + [["GET", "big"], ["PING"]])
            XCTAssertEqual(replies.prefix(2000).map { $0.integer }, (1...2000).map { Int64?(Int64($0)) })
            XCTAssertEqual(replies[2000].text, big)
            XCTAssertEqual(replies[2001].text, "PONG")
            XCTAssertFalse(c.hasBufferedInput)
        }
        XCTAssertEqual(try redis.cli(["GET", "n-socket"]), "2000")
        XCTAssertEqual(try redis.cli(["GET", "n-uring"]), "2000")
    }

    /// A server certificate the trusted CA did not sign: the connection is refused at the
    /// handshake with OpenSSL's reason, through either path.
    func testWrongCAIsRefused() throws {
        let redis = try TLSRedisServer(certs)
        for io in [IOMode.socket, .uring] {
            let text = thrownText {
                _ = try RedisConnection(
                    endpoint: RedisEndpoint(url: redis.url("ssl_ca_certs=\(certs.otherCAFile)")), io: io)
            }
            XCTAssertEqual(
                text,
                "Redis connection: TLS handshake with 127.0.0.1:\(redis.port) failed: certificate verify failed: "
                    + "self-signed certificate in certificate chain")
        }
    }

    /// `ssl_cert_reqs=optional` verifies as `required` does (a client has nothing to make optional,
    /// as with Python's ssl); TLS over a unix socket is refused before anything is sent.
    func testOptionalVerifiesAndUnixSocketTLSIsRefused() throws {
        let redis = try TLSRedisServer(certs)
        let optional = thrownText {
            _ = try RedisConnection(
                endpoint: RedisEndpoint(url: redis.url("ssl_cert_reqs=optional&ssl_ca_certs=\(certs.otherCAFile)")))
        }
        XCTAssertEqual(
            optional,
            "Redis connection: TLS handshake with 127.0.0.1:\(redis.port) failed: certificate verify failed: "
                + "self-signed certificate in certificate chain")
        let unix = thrownText {
            _ = try RedisConnection(
                endpoint: RedisEndpoint(host: "", port: 0, socketPath: "/tmp/none.sock", tls: RedisTLS()))
        }
        XCTAssertEqual(
            unix,
            "Redis connection: TLS over a unix socket (/tmp/none.sock) is not supported: use redis:// for a unix socket"
        )
    }

    /// A `rediss://` URL never speaks plaintext: the first byte a plain TCP listener gets is a TLS
    /// handshake record (0x16), and the connection fails when the listener hangs up.
    func testRedissSendsATLSHandshakeFirst() throws {
        let server = try LoopbackListener()
        defer { withExtendedLifetime(server) {} }  // its socket closes when it goes
        let (fd, port) = (server.fd, server.port)
        let firstByte = LockedBox<Int?>(nil)
        let listener = Thread {
            let conn = accept(fd, nil, nil)
            guard conn >= 0 else { return }
            // The record header (type, version, length), then the whole record: nothing is left
            // unread, so the close is a FIN (not a reset) whatever the timing.
            var header = [UInt8](repeating: 0, count: 5)
            guard recv(conn, &header, 5, Int32(MSG_WAITALL)) == 5 else {
                close(conn)
                return
            }
            firstByte.set(Int(header[0]))
            var record = [UInt8](repeating: 0, count: Int(header[3]) << 8 | Int(header[4]))
            _ = recv(conn, &record, record.count, Int32(MSG_WAITALL))
            close(conn)
        }
        listener.start()
        let text = thrownText {
            _ = try RedisConnection(endpoint: RedisEndpoint(url: "rediss://127.0.0.1:\(port)/0"), timeoutMs: 5000)
        }
        XCTAssertEqual(firstByte.get(), 0x16)
        XCTAssertEqual(
            text,
            "Redis connection: TLS handshake with 127.0.0.1:\(port) failed: Server closed the connection"
        )
    }

    /// `rediss://` to a plain redis-server: a clear error naming TLS, and no command reached it.
    func testRedissToAPlainServerFailsClearly() throws {
        let plain = try RedisServer()
        let before = try plain.client().info("stats", "total_commands_processed") ?? -1
        let text = thrownText {
            _ = try RedisConnection(
                endpoint: RedisEndpoint(url: "rediss://127.0.0.1:\(plain.port)/0?ssl_ca_certs=\(certs.caFile)"),
                timeoutMs: 1000)
        }
        XCTAssertEqual(
            text,
            "Redis connection: TLS handshake with 127.0.0.1:\(plain.port) failed: no TLS answer within 1000 ms "
                + "(is the server speaking TLS on port \(plain.port)?)")
        // The INFO that counted before is the only command since (the ClientHello is not one).
        XCTAssertEqual(try plain.client().info("stats", "total_commands_processed"), before + 1)
        plain.stop()
    }

    /// A certificate naming only DNS:localhost: reached as 127.0.0.1 it is refused while the host
    /// name is checked (the default), accepted with `ssl_check_hostname=false` or as `localhost`;
    /// `ssl_cert_reqs=none` accepts even a certificate no trusted CA signed.
    func testHostNameCheck() throws {
        let redis = try TLSRedisServer(certs, certificate: "localhost")
        let ca = "ssl_ca_certs=\(certs.caFile)"
        let text = thrownText { _ = try RedisConnection(endpoint: RedisEndpoint(url: redis.url(ca))) }
        XCTAssertEqual(
            text,
            "Redis connection: TLS handshake with 127.0.0.1:\(redis.port) failed: certificate verify failed: "
                + "IP address mismatch")
        let unchecked = try RedisConnection(endpoint: RedisEndpoint(url: redis.url(ca + "&ssl_check_hostname=false")))
        XCTAssertEqual(try unchecked.command("PING").text, "PONG")
        let byName = try RedisConnection(endpoint: RedisEndpoint(url: redis.url(ca, host: "localhost")))
        XCTAssertEqual(try byName.command("PING").text, "PONG")
        let named = try RedisConnection(endpoint: RedisEndpoint(url: redis.url(ca + "&ssl_server_name=localhost")))
        XCTAssertEqual(try named.command("PING").text, "PONG")
        let unverified = try RedisConnection(
            endpoint: RedisEndpoint(url: redis.url("ssl_cert_reqs=none&ssl_ca_certs=\(certs.otherCAFile)")))
        XCTAssertEqual(try unverified.command("PING").text, "PONG")
        let wrongName = thrownText {
            _ = try RedisConnection(endpoint: RedisEndpoint(url: redis.url(ca + "&ssl_server_name=redis.example")))
        }
        XCTAssertEqual(
            wrongName,
            "Redis connection: TLS handshake with 127.0.0.1:\(redis.port) failed: certificate verify failed: "
                + "hostname mismatch")
    }

    /// `--tls-auth-clients yes`: without a client certificate the link is refused (at connect,
    /// though TLS 1.3 reports it after the handshake); with `ssl_certfile`/`ssl_keyfile` it works.
    func testClientCertificateRequired() throws {
        let redis = try TLSRedisServer(certs, authClients: true)
        let text = thrownText {
            _ = try RedisConnection(endpoint: RedisEndpoint(url: redis.url("ssl_ca_certs=\(certs.caFile)")))
        }
        XCTAssertEqual(
            text,
            "Redis connection: TLS handshake with 127.0.0.1:\(redis.port) failed: tlsv13 alert certificate required")
        let c = try RedisConnection(endpoint: RedisEndpoint(url: redis.trustingURL))
        XCTAssertEqual(try c.command("PING").text, "PONG")
        let missing = thrownText {
            _ = try RedisConnection(
                endpoint: RedisEndpoint(url: redis.url("ssl_ca_certs=\(certs.caFile)&ssl_certfile=/nonexistent.pem")))
        }
        XCTAssertEqual(
            missing,
            "Redis connection: TLS configuration: cannot load the client certificate /nonexistent.pem: system lib")
    }

    /// Python Celery 5.7 sends over `rediss://` (redis-py's ssl_cert_reqs and ssl_ca_certs) and
    /// reads results over TLS; a Celeris worker on the same URL runs the tasks.
    func testPythonCeleryClientToCelerisWorkerOverTLS() throws {
        let redis = try TLSRedisServer(certs)
        let url = redis.url("ssl_cert_reqs=required&ssl_ca_certs=\(certs.caFile)")
        let p = try Spawned(
            try TestPaths.executable("celeris-worker"), ["-b", url, "-c", "2", "--loglevel", "debug"],
            env: ["CELERIS_STEP_SECONDS": "0.05"], name: "worker-tls")
        XCTAssertTrue(eventually(timeout: 15) { p.log.contains("connected to") }, p.log)
        let out = try runPython("interop_send.py", [url])
        let r = try resultLine(out)
        XCTAssertEqual(r["add"], 5)
        XCTAssertEqual(r["add_state"], "SUCCESS")
        XCTAssertEqual(r["create_task"], ["status": "Task completed"])
        XCTAssertEqual(r["unknown"], ["NotRegistered", "'no_such_task'"])
        XCTAssertEqual(try redis.client().command("HLEN", "unacked").integer, 0)
        XCTAssertTrue(p.isRunning)
        p.stop()
    }
}
