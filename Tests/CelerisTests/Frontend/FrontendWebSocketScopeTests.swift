import Logging
import XCTest

@testable import FastCore

/// The hub's per-client policy for token-scoped clients and subscription bounds,
/// driven in-process: fake peers, a hand-moved clock, no sockets, no sleeps.
final class FrontendWebSocketScopeTests: XCTestCase {
    let clock = ManualClock()
    let results = FakeResults()
    var lookups: [String] { results.watched }

    func hub(maxIds: Int = 100, maxSubscriptions: Int = 1000) -> WebSocketHub {
        var logger = Logger(label: "hub-scope-test")
        logger.logLevel = .critical
        var settings = WebSocketHub.Settings(pingIntervalMs: 1000, idleMs: 600_000)
        settings.maxIdsPerMessage = maxIds
        settings.maxSubscriptions = maxSubscriptions
        return WebSocketHub(
            settings: settings, logger: logger, clock: clock, releaseFreeMemory: {}, results: results)
    }

    func message(_ task: String) -> String { #"{"task_id": "\#(task)", "state": "PROGRESS"}"# }

    func testAScopedClientGetsOnlyTheTasksItSubscribesTo() {
        let hub = hub()
        let scoped = FakePeer(id: 1)
        let all = FakePeer(id: 2)
        hub.add(scoped, firehose: false)
        hub.add(all)
        hub.broadcast(message("someone-elses"))
        XCTAssertEqual(scoped.received, [], "no firehose for a ws token without ws:all")
        XCTAssertEqual(all.tasks, ["someone-elses"])
        XCTAssertTrue(hub.command(#"{"subscribe": ["mine"]}"#, from: 1))
        results.push("mine", nil)
        hub.broadcast(message("mine"))
        results.push("mine", "PROGRESS")
        results.push("other", "PROGRESS")
        hub.broadcast(message("other"))
        XCTAssertEqual(scoped.tasks, ["mine", "mine"], "its snapshot, then its update only")
        XCTAssertTrue(hub.command(#"{"unsubscribe": "*"}"#, from: 1))
        hub.broadcast(message("other"))
        XCTAssertEqual(scoped.tasks, ["mine", "mine"], "unsubscribing everything does not open the firehose")
    }

    func testAClientIsClosedWith1008WhenItsTokenExpires() {
        let hub = hub()
        let a = FakePeer(id: 1)
        let b = FakePeer(id: 2)
        hub.add(a, firehose: false, expiresAt: clock.now() + 30)
        hub.add(b, expiresAt: clock.now() + 60)
        clock.advance(29)
        hub.keepalive()
        XCTAssertNil(a.closedWith)
        XCTAssertEqual(hub.count, 2)
        clock.advance(1)
        hub.keepalive()
        XCTAssertEqual(a.closedWith?.code, 1008)
        XCTAssertEqual(a.closedWith?.reason, "token expired")
        XCTAssertFalse(hub.contains(1))
        XCTAssertNil(b.closedWith)
        // Between pings, the next message to an expired client closes it instead.
        clock.advance(30)
        hub.broadcast(message("t"))
        XCTAssertEqual(b.closedWith?.code, 1008)
        XCTAssertEqual(b.received, [], "nothing sent after expiry")
        XCTAssertEqual(hub.count, 0)
    }

    func testSubscribeIsBoundedPerMessageAndPerClient() throws {
        let hub = hub(maxIds: 3, maxSubscriptions: 4)
        let p = FakePeer(id: 1)
        hub.add(p)
        XCTAssertTrue(hub.command(#"{"subscribe": ["a", "b", "c", "d"]}"#, from: 1))
        XCTAssertEqual(lookups, [], "a message over the bound is refused whole")
        XCTAssertEqual(try JSONParser.parse(try XCTUnwrap(p.received.last))["error"], "too_many_ids")
        XCTAssertTrue(hub.command(#"{"subscribe": ["a", "b", "c"]}"#, from: 1))
        XCTAssertTrue(hub.command(#"{"subscribe": ["d", "e", "f"]}"#, from: 1))
        XCTAssertEqual(lookups, ["a", "b", "c", "d"])
        XCTAssertEqual(hub.subscriptions(of: 1).count, 4)
        XCTAssertEqual(try JSONParser.parse(try XCTUnwrap(p.received.last))["error"], "too_many_subscriptions")
        let long = String(repeating: "x", count: 256)
        XCTAssertTrue(hub.command(#"{"unsubscribe": ["a"], "subscribe": ["\#(long)"]}"#, from: 1))
        XCTAssertEqual(try JSONParser.parse(try XCTUnwrap(p.received.last))["error"], "invalid_task_id")
        XCTAssertEqual(lookups.count, 4)
    }
}
