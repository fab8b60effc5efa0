import FastCore
import Logging
import XCTest

/// The hub's policy driven in-process: fake peers, a hand-moved clock, no sockets, no sleeps.
final class FrontendWebSocketHubTests: XCTestCase {
    let clock = ManualClock()
    var lookups: [String] = []
    var trims = 0

    func hub(
        _ settings: WebSocketHub.Settings = .init(
            softLimitBytes: 1000, hardLimitBytes: 10_000, stuckSeconds: 10, idleMs: 60_000)
    ) -> WebSocketHub {
        var logger = Logger(label: "hub-test")
        logger.logLevel = .critical
        return WebSocketHub(
            settings: settings, logger: logger, clock: clock, releaseFreeMemory: { [unowned self] in trims += 1 }
        ) {
            [unowned self] task, reply in
            lookups.append(task)
            reply(#"{"task_id": "\#(task)", "state": "PENDING"}"#)
        }
    }

    func message(_ task: String, _ state: String) -> String { #"{"task_id": "\#(task)", "state": "\#(state)"}"# }

    func testEveryClientGetsEveryMessage() {
        let hub = hub()
        let a = FakePeer(id: 1)
        let b = FakePeer(id: 2)
        hub.add(a)
        hub.add(b)
        hub.broadcast(message("t1", "PROGRESS"))
        hub.broadcast(message("t2", "SUCCESS"))
        XCTAssertEqual(a.tasks, ["t1", "t2"])
        XCTAssertEqual(b.tasks, ["t1", "t2"])
        XCTAssertEqual(hub.takeCounts().delivered, 4)
        XCTAssertEqual(hub.takeCounts().delivered, 0, "counts reset when taken")
    }

    func testSubscribeNarrowsTheStreamAndSendsTheCurrentState() {
        let hub = hub()
        let narrow = FakePeer(id: 1)
        let everything = FakePeer(id: 2)
        hub.add(narrow)
        hub.add(everything)
        XCTAssertTrue(hub.command(#"{"subscribe": ["t1", "t3"]}"#, from: 1))
        XCTAssertEqual(lookups, ["t1", "t3"])
        XCTAssertEqual(narrow.tasks, ["t1", "t3"], "each new subscription's current state at once")
        XCTAssertEqual(hub.subscriptions(of: 1), ["t1", "t3"])
        XCTAssertTrue(hub.command(#"{"subscribe": ["t1"]}"#, from: 1))
        XCTAssertEqual(lookups, ["t1", "t3"], "no second lookup for a task already subscribed")

        hub.broadcast(message("t2", "PROGRESS"))
        hub.broadcast(message("t1", "PROGRESS"))
        XCTAssertEqual(narrow.tasks, ["t1", "t3", "t1"])
        XCTAssertEqual(everything.tasks, ["t2", "t1"])

        XCTAssertTrue(hub.command(#"{"unsubscribe": ["t1"]}"#, from: 1))
        XCTAssertEqual(hub.subscriptions(of: 1), ["t3"])
        hub.broadcast(message("t1", "SUCCESS"))
        hub.broadcast(message("t3", "SUCCESS"))
        XCTAssertEqual(narrow.tasks, ["t1", "t3", "t1", "t3"])

        XCTAssertTrue(hub.command(#"{"unsubscribe": "*"}"#, from: 1))
        XCTAssertEqual(hub.subscriptions(of: 1), [])
        hub.broadcast(message("t4", "PROGRESS"))
        XCTAssertEqual(narrow.tasks.last, "t4", "no subscriptions: every task again")
    }

    func testOtherTextIsNotACommand() {
        let hub = hub()
        hub.add(FakePeer(id: 1))
        for text in ["hello", "[1]", #"{"other": 1}"#, "{", #"{"subscribe": "t1"}"#] {
            XCTAssertFalse(hub.command(text, from: 1), text)
        }
        XCTAssertFalse(hub.command(#"{"subscribe": ["t1"]}"#, from: 99), "unknown client")
        XCTAssertEqual(hub.subscriptions(of: 1), [])
        XCTAssertTrue(lookups.isEmpty)
    }

    func testSlowConsumerLosesProgressButKeepsFinalsThenIsClosedWith1008() {
        let hub = hub()
        let slow = FakePeer(id: 1)
        let reader = FakePeer(id: 2)
        hub.add(slow)
        hub.add(reader)
        slow.queuedBytes = 5000  // over the soft limit, under the hard one
        hub.broadcast(message("a", "PROGRESS"))
        for final in ["SUCCESS", "FAILURE", "REVOKED"] { hub.broadcast(message("a", final)) }
        XCTAssertEqual(slow.received.count, 3, "progress dropped, final states kept")
        XCTAssertEqual(reader.received.count, 4)
        XCTAssertEqual(hub.takeCounts().dropped, 1)

        clock.advance(10)  // exactly the stuck time: not yet
        hub.broadcast(message("a", "PROGRESS"))
        XCTAssertNil(slow.closedWith)
        XCTAssertTrue(hub.contains(1))
        clock.advance(0.5)
        hub.broadcast(message("a", "PROGRESS"))
        XCTAssertEqual(slow.closedWith?.code, 1008)
        XCTAssertEqual(slow.closedWith?.reason, "client stopped reading")
        XCTAssertFalse(hub.contains(1))
        XCTAssertEqual(hub.count, 1)
        XCTAssertEqual(hub.takeCounts().closedSlow, 1)
        XCTAssertEqual(reader.received.count, 6)
        XCTAssertNil(reader.closedWith)
    }

    func testAClientThatCatchesUpStartsItsStuckTimeAgain() {
        let hub = hub()
        let peer = FakePeer(id: 1)
        hub.add(peer)
        peer.queuedBytes = 5000
        hub.broadcast(message("a", "PROGRESS"))
        clock.advance(8)
        peer.queuedBytes = 0
        hub.broadcast(message("a", "PROGRESS"))
        peer.queuedBytes = 5000
        clock.advance(8)
        hub.broadcast(message("a", "PROGRESS"))
        XCTAssertNil(peer.closedWith, "16 s over the limit in all, but never 10 in a row")
        clock.advance(10.5)
        hub.broadcast(message("a", "PROGRESS"))
        XCTAssertEqual(peer.closedWith?.code, 1008)
    }

    func testStuckClientIsClosedByKeepaliveWithoutNewMessages() {
        let hub = hub()
        let peer = FakePeer(id: 1)
        hub.add(peer)
        peer.queuedBytes = 5000
        hub.keepalive()
        XCTAssertNil(peer.closedWith)
        XCTAssertEqual(peer.pings, 1)
        clock.advance(11)
        hub.keepalive()
        XCTAssertEqual(peer.closedWith?.code, 1008)
        XCTAssertFalse(hub.contains(1))
    }

    func testPastTheHardLimitIsClosedWith1013AtOnce() {
        let hub = hub()
        let peer = FakePeer(id: 1)
        hub.add(peer)
        peer.queuedBytes = 10_001
        hub.broadcast(message("a", "SUCCESS"))
        XCTAssertEqual(peer.closedWith?.code, 1013)
        XCTAssertEqual(peer.closedWith?.reason, "client too slow: output over 10000 bytes")
        XCTAssertTrue(peer.received.isEmpty, "not even a final state")
        XCTAssertFalse(hub.contains(1))
        XCTAssertEqual(hub.takeCounts().closedSlow, 1)
    }

    func testSilentClientIsClosedWith1001AfterTheIdleTime() {
        let hub = hub()
        let silent = FakePeer(id: 1)
        let talking = FakePeer(id: 2)
        hub.add(silent)
        hub.add(talking)
        hub.keepalive()
        XCTAssertEqual(silent.pings, 1)
        XCTAssertEqual(talking.pings, 1)
        clock.advance(30)
        XCTAssertFalse(hub.command("hello", from: 2), "plain text still counts as activity")
        clock.advance(30)  // 60 s: the limit, not past it
        hub.keepalive()
        XCTAssertNil(silent.closedWith)
        clock.advance(1)
        hub.keepalive()
        XCTAssertEqual(silent.closedWith?.code, 1001)
        XCTAssertEqual(silent.closedWith?.reason, "idle")
        XCTAssertFalse(hub.contains(1))
        XCTAssertNil(talking.closedWith)
        XCTAssertEqual(talking.pings, 3)
        XCTAssertEqual(silent.pings, 2, "no ping with the close")
    }

    func testWhatTheTransportHeardCountsAsActivity() {
        let hub = hub()
        let peer = FakePeer(id: 1)
        hub.add(peer)
        clock.advance(50)
        peer.idleSeconds = 5  // a pong 5 s ago, which the hub itself never sees
        hub.keepalive()
        clock.advance(50)
        peer.idleSeconds = .infinity
        hub.keepalive()
        XCTAssertNil(peer.closedWith, "55 s since the pong")
        clock.advance(6)
        hub.keepalive()
        XCTAssertEqual(peer.closedWith?.code, 1001)
    }

    func testClosedPeersAreNotPingedAndRemovedClientsGetNothing() {
        let hub = hub()
        let peer = FakePeer(id: 1)
        let gone = FakePeer(id: 2)
        hub.add(peer)
        hub.add(gone)
        peer.isOpen = false
        hub.keepalive()
        XCTAssertEqual(peer.pings, 0)
        hub.remove(2)
        hub.broadcast(message("a", "SUCCESS"))
        XCTAssertTrue(gone.received.isEmpty)
        XCTAssertEqual(hub.count, 1)
    }

    func testCloseAllAndMemoryTrimWhenNothingIsQueued() {
        let hub = hub()
        let a = FakePeer(id: 1)
        let b = FakePeer(id: 2)
        hub.add(a)
        hub.add(b)
        b.queuedBytes = 10
        hub.keepalive()
        XCTAssertEqual(trims, 0, "bytes still queued")
        b.queuedBytes = 0
        hub.keepalive()
        XCTAssertEqual(trims, 1)
        hub.keepalive()
        XCTAssertEqual(trims, 1, "at most once a second")
        clock.advance(1.5)
        hub.keepalive()
        XCTAssertEqual(trims, 2)
        hub.closeAll(code: 1001, reason: "server shutting down")
        XCTAssertEqual(a.closedWith?.code, 1001)
        XCTAssertEqual(b.closedWith?.reason, "server shutting down")
    }
}
