import FastCore
import Foundation
import XCTest

/// `/ws` fan-out: subscriptions, slow consumers, keepalive.
final class WebSocketFanOutTests: FrontendTestCase {
    override var frontendFlags: [String] {
        [
            "--ws-soft-limit-bytes", "65536", "--ws-hard-limit-bytes", "1048576", "--ws-stuck-seconds", "2",
            "--ws-ping-ms", "200", "--ws-idle-ms", "1500",
        ]
    }

    func publish(_ task: String, _ state: String, extra: String = "") throws {
        try client.command("PUBLISH", "task_status", #"{"task_id": "\#(task)", "state": "\#(state)"\#(extra)}"#)
    }

    func nextText(_ s: RawSocket) throws -> JSON { try Self.nextText(s) }

    /// Next text message, answering pings as a browser does.
    static func nextText(_ s: RawSocket) throws -> JSON {
        while true {
            let f = try WSFrame.read(s)
            if f.opcode == 0x9 {
                try s.send(WSFrame.make(opcode: 0xA, payload: f.payload))
                continue
            }
            guard f.opcode == 0x1 else { throw TestFailure("unexpected opcode \(f.opcode)") }
            return try JSONParser.parse(f.payload)
        }
    }

    func testSubscriptionsNarrowTheStreamAndSendTheCurrentStateAtOnce() throws {
        try client.command(
            "SETEX", ResultRecord.key("done-1"), "100",
            ResultRecord(taskId: "done-1", state: .success, result: 5, dateDone: 1).serialized())
        let narrow = try WSFrame.open(port: port)
        let everything = try WSFrame.open(port: port)
        try narrow.send(WSFrame.make(opcode: 0x1, payload: Array(#"{"subscribe": ["t1", "done-1"]}"#.utf8)))
        // Each new subscription gets its task's current state.
        var current: [String: JSON] = [:]
        for _ in 0..<2 {
            let m = try nextText(narrow)
            current[m["task_id"]?.stringValue ?? "?"] = m
        }
        XCTAssertEqual(current["t1"]?["state"], "PENDING")
        XCTAssertEqual(current["done-1"]?["state"], "SUCCESS")
        XCTAssertEqual(current["done-1"]?["result"], 5)
        // task_status goes to `everything` (no subscriptions) only; `narrow` follows t1's result
        // channel, on which the worker publishes each stored state. Both current states came after
        // the subscription was in place, and `everything` was added before its 101 went out.
        try publish("t2", "PROGRESS")
        try publish("t1", "PROGRESS")
        let progress = ResultRecord(taskId: "t1", state: .progress, result: ["progress": 1]).serialized()
        _ = try client.pipeline([
            ["SETEX", ResultRecord.key("t1"), "100", progress], ["PUBLISH", ResultRecord.key("t1"), progress],
        ])
        let update = try nextText(narrow)
        XCTAssertEqual(update["task_id"], "t1")
        XCTAssertEqual(update["state"], "PROGRESS")
        XCTAssertEqual(update["meta"]?["progress"], 1)
        XCTAssertEqual(try nextText(everything)["task_id"], "t2")
        XCTAssertEqual(try nextText(everything)["task_id"], "t1")
        // A refused subscribe is answered at once, after the unsubscribe in the same message
        // has taken effect: from then on `narrow` has no subscriptions and takes the firehose.
        let long = String(repeating: "x", count: 256)
        try narrow.send(
            WSFrame.make(opcode: 0x1, payload: Array(#"{"subscribe": ["\#(long)"], "unsubscribe": "*"}"#.utf8)))
        XCTAssertEqual(try nextText(narrow)["error"], "invalid_task_id")
        try publish("t3", "PROGRESS")
        XCTAssertEqual(try nextText(narrow)["task_id"], "t3")
    }

    /// A client that never reads is closed once over its bound, and the frontend's
    /// memory stays bounded; a reading client still gets every final state.
    func testSlowConsumerIsBoundedAndClosedWhileOthersKeepUp() throws {
        // Its own frontend: a long idle timeout, so only the stuck-reader rule can close the client.
        frontend.stop()
        port = freePort()
        frontend = try CelerisProcess.frontend(
            redis: redis, port: port,
            extra: [
                "--ws-soft-limit-bytes", "65536", "--ws-stuck-seconds", "2", "--ws-ping-ms", "200", "--ws-idle-ms",
                "60000",
            ])
        let stuck = try WSFrame.open(port: port, receiveBuffer: 4096)
        let reader = try WSFrame.open(port: port)
        let collector = Collector(reader)
        collector.start()
        let pad = String(repeating: "x", count: 2000)
        // Fill the stuck client's socket, then keep a trickle going: over its soft
        // bound its progress is dropped (memory stays flat), and after
        // --ws-stuck-seconds it is closed with 1008.
        let message = #"{"task_id": "slow", "state": "PROGRESS", "pad": "\#(pad)"}"#
        var rounds = 0
        let started = Date()
        while Date().timeIntervalSince(started) < 15,
            try HTTPClient.request("GET", port: port, path: "/health").json?["websockets"] != 1
        {
            _ = try client.pipeline(
                Array(repeating: ["PUBLISH", "task_status", message], count: rounds < 5 ? 1000 : 20))
            rounds += 1
            if rounds >= 5 { Thread.sleep(forTimeInterval: 0.1) }
        }
        XCTAssertEqual(
            try HTTPClient.request("GET", port: port, path: "/health").json?["websockets"], 1,
            "the stuck client was closed")
        try publish("slow", "SUCCESS")
        XCTAssertTrue(eventually(timeout: 10) { collector.finals.get() == 1 }, "the reading client got the final state")
        // Closed as a slow consumer, not for any other reason (which code, 1008 or 1013, is
        // FrontendWebSocketHubTests' concern, on a ManualClock).
        XCTAssertTrue(
            try eventually(timeout: 5, interval: 0.1) {
                try Prometheus.scrape(port: port)["celeris_ws_slow_clients_closed_total"] == 1
            }, frontend.log)
        let rss = try String(contentsOfFile: "/proc/\(frontend.process.processIdentifier)/status", encoding: .utf8)
            .split(separator: "\n").first { $0.hasPrefix("VmRSS:") }?.split(separator: " ").dropFirst().first.flatMap {
                Int($0)
            }
        XCTAssertLessThan(rss ?? .max, 100 * 1024, "frontend RSS \(rss ?? -1) kB after \(rounds * 2) MB of fan-out")
        withExtendedLifetime(stuck) {}
    }

    /// End to end: the loop's timer runs the hub's keepalive and the transport's idle
    /// time reaches it (the policy's edges are in FrontendWebSocketHubTests, on a ManualClock).
    func testSilentClientIsClosedAfterTheIdleTimeout() throws {
        let silent = try WSFrame.open(port: port)
        // It never answers pings: after ~1.5 s the server closes it with 1001.
        var code = 0
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            let f = try WSFrame.read(silent)
            if f.opcode == 0x8 {
                code = WSFrame.closeCode(f.payload)
                break
            }
        }
        XCTAssertEqual(code, 1001)
    }
}

/// Reads a WebSocket on its own thread, counting progress and final messages.
final class Collector: @unchecked Sendable {
    let socket: RawSocket
    let finals = LockedBox(0)
    let progress = LockedBox(0)
    init(_ s: RawSocket) { socket = s }

    func start() {
        Thread { [self] in
            while let m = try? WebSocketFanOutTests.nextText(socket) {
                if m["state"] == "SUCCESS" { finals.modify { $0 += 1 } } else { progress.modify { $0 += 1 } }
                if finals.get() == 1 { break }
            }
        }.start()
    }
}
