import FastCore
import Foundation
import XCTest

/// Bad input gets a clear error and loses nothing.
final class BadInputTests: XCTestCase {
    var redis: RedisServer!
    var port = 0
    var frontend: Spawned!

    override func setUpWithError() throws {
        redis = try RedisServer()
        port = freePort()
        frontend = try CelerisProcess.frontend(
            redis: redis, port: port,
            extra: ["--max-body-bytes", "1024", "--max-header-bytes", "4096", "--max-ws-message-bytes", "1024"])
    }

    override func tearDown() {
        frontend.stop()
        redis.stop()
    }

    func assertJSONError(_ r: HTTPResponse, _ status: Int, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, status, r.text, file: file, line: line)
        XCTAssertEqual(r.headers["content-type"], "application/json", file: file, line: line)
        XCTAssertNotNil(r.json?["error"]?.stringValue, "not a JSON error: \(r.text)", file: file, line: line)
        XCTAssertNotNil(r.json?["detail"]?.stringValue, file: file, line: line)
    }

    func testMalformedJSONIs400AndNothingIsQueued() throws {
        assertJSONError(
            try HTTPClient.request("POST", port: port, path: "/tasks", body: #"{"task": "add", "args": [1,"#), 400)
        assertJSONError(try HTTPClient.request("POST", port: port, path: "/tasks", body: #"{"args": 5}"#), 422)
        assertJSONError(try HTTPClient.request("POST", port: port, path: "/tasks?task_length=-3"), 422)
        XCTAssertEqual(try redis.client().command("LLEN", "celery").integer, 0)
    }

    func testUnknownRouteAndWrongMethod() throws {
        assertJSONError(try HTTPClient.request("GET", port: port, path: "/nope"), 404)
        let r = try HTTPClient.request("GET", port: port, path: "/tasks")
        assertJSONError(r, 405)
        XCTAssertEqual(r.headers["allow"], "POST")
        assertJSONError(try HTTPClient.request("DELETE", port: port, path: "/status/abc"), 405)
    }

    func testOversizeBodyIs413() throws {
        let big = #"{"task": "add", "args": [""# + String(repeating: "x", count: 5000) + #""]}"#
        assertJSONError(try HTTPClient.request("POST", port: port, path: "/tasks", body: big), 413)
        // Chunked, with no Content-Length to refuse up front.
        let s = try RawSocket(port: port)
        let chunk = String(repeating: "y", count: 800)
        try s.send(
            "POST /tasks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "320\r\n\(chunk)\r\n320\r\n\(chunk)\r\n0\r\n\r\n")
        assertJSONError(try s.readResponse(), 413)
        XCTAssertEqual(try redis.client().command("LLEN", "celery").integer, 0)
    }

    func testOversizeHeadersAre431() throws {
        let r = try HTTPClient.request(
            "GET", port: port, path: "/health", headers: ["X-Big": String(repeating: "h", count: 8000)])
        assertJSONError(r, 431)
        XCTAssertEqual(r.headers["connection"], "close")
    }

    func testGarbageRequestIs400() throws {
        let s = try RawSocket(port: port)
        try s.send("HELLO THERE\r\n\r\n")
        assertJSONError(try s.readResponse(), 400)
    }

    func testKeepAliveAndPipelinedRequestsAnswerInOrder() throws {
        let s = try RawSocket(port: port)
        try s.send(
            "GET /status/a HTTP/1.1\r\nHost: localhost\r\n\r\nGET /nope HTTP/1.1\r\nHost: localhost\r\n\r\nGET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"
        )
        XCTAssertEqual(try s.readResponse().json?["status"], "Pending...")
        XCTAssertEqual(try s.readResponse().status, 404)
        let health = try s.readResponse()
        XCTAssertEqual(health.json?["status"], "ok")
        XCTAssertNotNil(health.headers["date"])
        XCTAssertNil(health.headers["connection"])
    }

    func testBadWebSocketHandshakeIs400() throws {
        let s = try RawSocket(port: port)
        try s.send(
            "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assertJSONError(try s.readResponse(), 400)
        assertJSONError(try HTTPClient.request("GET", port: port, path: "/ws"), 400)
    }

    func testUnmaskedFrameClosesWith1002() throws {
        let s = try WSFrame.open(port: port)
        try s.send(WSFrame.make(opcode: 0x1, payload: Array("hi".utf8), masked: false))
        let f = try WSFrame.read(s)
        XCTAssertEqual(f.opcode, 0x8)
        XCTAssertEqual(WSFrame.closeCode(f.payload), 1002)
    }

    /// No extension is negotiated: a frame with any reserved bit set, or a reserved
    /// opcode, is a protocol error.
    func testReservedBitsAndBadOpcodeClose1002() throws {
        for rsv: UInt8 in [0x40, 0x20, 0x10] {
            let s = try WSFrame.open(port: port)
            try s.send(WSFrame.make(opcode: 0x1, payload: Array("hi".utf8), rsv: rsv))
            let f = try WSFrame.read(s)
            XCTAssertEqual(f.opcode, 0x8, "RSV \(rsv)")
            XCTAssertEqual(WSFrame.closeCode(f.payload), 1002, "RSV \(rsv)")
        }
        let s = try WSFrame.open(port: port)
        try s.send(WSFrame.make(opcode: 0x3, payload: []))
        let f = try WSFrame.read(s)
        XCTAssertEqual(f.opcode, 0x8)
        XCTAssertEqual(WSFrame.closeCode(f.payload), 1002)
    }

    func testInvalidUTF8TextClosesWith1007() throws {
        let s = try WSFrame.open(port: port)
        try s.send(WSFrame.make(opcode: 0x1, payload: [0x68, 0xC0, 0xAF]))
        let f = try WSFrame.read(s)
        XCTAssertEqual(f.opcode, 0x8)
        XCTAssertEqual(WSFrame.closeCode(f.payload), 1007)
    }

    func testOversizeMessageClosesWith1009() throws {
        let s = try WSFrame.open(port: port)
        try s.send(WSFrame.make(opcode: 0x1, payload: Array(repeating: 0x61, count: 600), fin: false))
        try s.send(WSFrame.make(opcode: 0x0, payload: Array(repeating: 0x61, count: 600)))
        XCTAssertEqual(WSFrame.closeCode(try WSFrame.read(s).payload), 1009)
    }

    func testPingPongFragmentsAndCloseHandshake() throws {
        let s = try WSFrame.open(port: port)
        try s.send(WSFrame.make(opcode: 0x9, payload: Array("p1".utf8)))
        let pong = try WSFrame.read(s)
        XCTAssertEqual(pong.opcode, 0xA)
        XCTAssertEqual(pong.payload, Array("p1".utf8))
        try s.send(WSFrame.make(opcode: 0x1, payload: Array("frag".utf8), fin: false))
        try s.send(WSFrame.make(opcode: 0x0, payload: Array("mented".utf8)))
        try s.send(WSFrame.make(opcode: 0x8, payload: [0x03, 0xE8]))
        let close = try WSFrame.read(s)
        XCTAssertEqual(close.opcode, 0x8)
        XCTAssertEqual(WSFrame.closeCode(close.payload), 1000)
        XCTAssertTrue(eventually(timeout: 5) { frontend.log.contains("Received WebSocket data: fragmented") })
    }

    /// Redis down → 503 with a JSON error; back up → frontend and worker
    /// reconnect by themselves and an acknowledged task completes.
    func testRedisOutageIs503AndBothSidesReconnect() throws {
        let worker = try CelerisProcess.worker(redis: redis)
        redis.stop()
        XCTAssertTrue(
            eventually(timeout: 10) { (try? HTTPClient.request("GET", port: port, path: "/health").status) == 503 })
        let refused = try HTTPClient.request(
            "POST", port: port, path: "/tasks", body: #"{"task": "add", "args": [1, 2]}"#)
        assertJSONError(refused, 503)
        XCTAssertEqual(refused.headers["retry-after"], "1")
        assertJSONError(try HTTPClient.request("GET", port: port, path: "/status/x"), 503)

        try redis.start()
        var accepted: HTTPResponse?
        XCTAssertTrue(
            try eventually(timeout: 15, interval: 0.1) {
                accepted = try HTTPClient.request(
                    "POST", port: port, path: "/tasks", body: #"{"task": "add", "args": [1, 2]}"#)
                return accepted?.status == 200
            })
        let id = try XCTUnwrap(accepted?.json?["task_id"]?.stringValue)
        XCTAssertTrue(
            try eventually(timeout: 15) {
                try HTTPClient.request("GET", port: port, path: "/status/\(id)").json?["result"] == 3
            }, "worker log:\n\(worker.log)")
        XCTAssertTrue(worker.isRunning)
    }

    /// Found by the fuzzer: an empty ping (and an empty data frame) once read a NULL buffer.
    func testEmptyControlAndDataFramesAreHandled() throws {
        let s = try WSFrame.open(port: port)
        try s.send(WSFrame.make(opcode: 0x9, payload: []))
        let pong = try WSFrame.read(s)
        XCTAssertEqual(pong.opcode, 0xA)
        XCTAssertEqual(pong.payload, [])
        try s.send(WSFrame.make(opcode: 0x1, payload: Array("a".utf8), fin: false))
        try s.send(WSFrame.make(opcode: 0x0, payload: []))
        XCTAssertTrue(eventually(timeout: 5) { self.frontend.log.contains("Received WebSocket data: a") })
    }
}
