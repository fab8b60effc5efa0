import FastCore
import Foundation
import XCTest

/// Clients that cost the server memory or a slot for ever: pipelining (or pinging) without
/// reading, piling requests behind a pending one, one large request, trickling a request.
/// The C server runs in this process (`ServerThread`) so its per-connection state is
/// looked at directly, on its loop thread.
final class FrontendAbuseTests: XCTestCase {
    static let outputLimit = 64 * 1024
    private var server: ServerThread?

    override func tearDown() {
        server?.stop()
        server = nil
    }

    private func start(
        limits: HTTPServer.Limits = HTTPServer.Limits(maxQueuedOutputBytes: FrontendAbuseTests.outputLimit),
        handler: @escaping ServerThread.Handler
    ) throws -> ServerThread {
        let s = try ServerThread(limits: limits, handler: handler)
        server = s
        return s
    }

    /// Send `bytes` until all are sent or the socket takes nothing for `stallMs` (the
    /// server stopped reading and the kernel buffers are full); true when it stalled.
    private func sendUntilStalled(_ socket: RawSocket, _ bytes: [UInt8], stallMs: Int32 = 300) -> Bool {
        let flags = fcntl(socket.fd, F_GETFL)
        _ = fcntl(socket.fd, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(socket.fd, F_SETFL, flags) }
        var off = 0
        while off < bytes.count {
            var p = pollfd(fd: socket.fd, events: Int16(POLLOUT), revents: 0)
            if poll(&p, 1, stallMs) == 0 { return true }
            let n = bytes[off...].withUnsafeBytes {
                Glibc.send(socket.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if n > 0 { off += n }
        }
        return false
    }

    private func smallSendBuffer(_ socket: RawSocket) {
        var size: Int32 = 16 * 1024
        setsockopt(socket.fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }

    /// A client pipelines thousands of requests and never reads: once its output reaches
    /// the limit the server stops reading it, so its queued output stays bounded; others are
    /// served meanwhile, and the client gets every response once it reads.
    func testPipeliningClientThatNeverReadsIsPausedAndOthersAreServed() throws {
        let body = String(repeating: "x", count: 1000)
        let abuser = LockedBox<UInt64?>(nil)
        let server = try start { request, connection in
            if request.path == "/abuse" { abuser.set(connection.id) }
            connection.respond(status: 200, body: body, contentType: "text/plain")
        }
        let count = 8000
        let client = try RawSocket(port: server.port, timeout: 10, receiveBuffer: 4096)
        let request = "GET /abuse HTTP/1.1\r\nHost: x\r\n\r\n"
        _ = sendUntilStalled(client, Array(String(repeating: request, count: count).utf8))
        XCTAssertTrue(eventually(timeout: 5) { abuser.get() != nil })
        let id = try XCTUnwrap(abuser.get())
        XCTAssertTrue(
            eventually(timeout: 5) { server.onLoop { server.connection(id)?.isPausedForOutput ?? false } },
            "the connection is no longer read")
        // The kernel may take some of the queued output meanwhile, and reading resumes below
        // half the limit: the paused flag can flip back, the bound on queued output holds.
        let queued = server.onLoop { server.connection(id)?.queuedBytes ?? -1 }
        XCTAssertLessThanOrEqual(queued, Self.outputLimit + 2048, "output bounded by the limit plus one response")

        let other = try HTTPClient.request("GET", port: server.port, path: "/other")
        XCTAssertEqual(other.status, 200, "another client is served meanwhile")

        // Once the client reads, the server resumes and answers every request.
        let first = try client.readResponse()
        XCTAssertEqual(first.status, 200)
        let oneResponse =
            first.statusLine.utf8.count + 2
            + first.headers.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 4 } + 2 + body.utf8.count
        let rest = try client.read(oneResponse * (count - 1))
        XCTAssertTrue(
            String(decoding: rest.suffix(body.utf8.count), as: UTF8.self) == body, "the last response is whole")
    }

    /// A WebSocket client sends pings and never reads the pongs: it stops being read too.
    func testPingFloodWithoutReadingIsPaused() throws {
        let server = try start { _, connection in connection.respond(status: 404, body: "{}") }
        let client = try WSFrame.open(port: server.port, receiveBuffer: 4096)
        let ws = try XCTUnwrap(server.onLoop { server.connections.keys.first })
        let ping = WSFrame.make(opcode: 0x9, payload: Array(repeating: 0x61, count: 125))
        _ = sendUntilStalled(client, Array((0..<40_000).map { _ in ping }.joined()))
        XCTAssertTrue(
            eventually(timeout: 5) { server.onLoop { server.connection(ws)?.isPausedForOutput ?? false } },
            "the WebSocket is no longer read")
        let queued = server.onLoop { server.connection(ws)?.queuedBytes ?? -1 }
        XCTAssertLessThanOrEqual(queued, Self.outputLimit + 256, "pongs bounded by the limit plus one")
        let pong = try WSFrame.read(client)
        XCTAssertEqual(pong.opcode, 0xA, "pongs flow once the client reads")
    }

    /// While a request waits for its answer, the requests pipelined behind it stay in the
    /// socket (the client's sends stall) instead of in the server's memory.
    func testPipelinedRequestsWaitInTheSocketWhileOneIsPending() throws {
        let held = LockedBox<UInt64?>(nil)
        let server = try start { request, connection in
            if request.path == "/hold" {
                held.set(connection.id)  // answered later, from the test
            } else {
                connection.respond(status: 200, body: #"{"ok": true}"#)
            }
        }
        let client = try RawSocket(port: server.port, timeout: 10)
        smallSendBuffer(client)
        try client.send("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(eventually(timeout: 5) { held.get() != nil })
        let id = try XCTUnwrap(held.get())
        let pipelined = Array(String(repeating: "GET /next HTTP/1.1\r\nHost: x\r\n\r\n", count: 60_000).utf8)
        XCTAssertTrue(sendUntilStalled(client, pipelined), "the server stopped reading: the client's sends stall")
        let retained = server.onLoop { server.connection(id)?.retainedInputBytes ?? -1 }
        XCTAssertLessThanOrEqual(retained, 64 * 1024, "at most a read's worth of input is held")

        server.onLoop { server.connection(id)?.respond(status: 200, body: #"{"held": true}"#) }
        XCTAssertEqual(try client.readResponse().json?["held"], true)
        XCTAssertEqual(try client.readResponse().json?["ok"], true, "the next pipelined request is read after it")
    }

    /// A large request's buffer is freed once it is answered; the connection keeps little.
    func testLargeRequestBufferIsReleasedAfterItsResponse() throws {
        let server = try start { request, connection in
            if request.path == "/check" {
                connection.respond(status: 200, body: #"{"retained": \#(connection.retainedInputBytes)}"#)
            } else {
                connection.respond(status: 200, body: #"{"size": \#(request.body.count)}"#)
            }
        }
        let client = try RawSocket(port: server.port, timeout: 10)
        let body = String(repeating: "y", count: 512 * 1024)
        try client.send("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
        XCTAssertEqual(try client.readResponse().json?["size"], .int(Int64(body.utf8.count)))
        try client.send("GET /check HTTP/1.1\r\nHost: x\r\n\r\n")
        let retained = try XCTUnwrap(client.readResponse().json?["retained"]?.intValue)
        XCTAssertLessThanOrEqual(retained, 32 * 1024, "the 512 KiB request's buffer is gone")
    }

    /// The header timeout is a deadline from a request's first byte: a client trickling a
    /// byte every 100 ms (never idle for the 300 ms timeout) still gets 408 after 300 ms.
    func testTricklingClientGets408AtTheDeadline() throws {
        let server = try start(limits: HTTPServer.Limits(headerTimeoutMs: 300, idleTimeoutMs: 5000)) { _, c in
            c.respond(status: 200, body: "{}")
        }
        let client = try RawSocket(port: server.port, timeout: 5)
        let started = Date()
        try client.send("GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        var answered = false
        for _ in 0..<30 {  // 3 s of trickling at most
            var p = pollfd(fd: client.fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 100) > 0 {
                answered = true
                break
            }
            try client.send("a")
        }
        XCTAssertTrue(answered, "the server answered while the client was still trickling")
        let response = try client.readResponse()
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(response.status, 408)
        XCTAssertGreaterThanOrEqual(elapsed, 0.29, "not before the deadline")
        XCTAssertLessThan(elapsed, 1.5, "at the deadline, not after the client stops")
        XCTAssertTrue(client.isClosedByPeer())
    }
}
