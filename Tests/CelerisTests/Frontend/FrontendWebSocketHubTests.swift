import Logging
import XCTest

@testable import FastCore

/// A `ResultSource` driven by hand: `push` hands an update to the task's watchers, as
/// `ResultWatch` would (its own rules are ResultWatchTests' concern, on a real Redis).
final class FakeResults: ResultSource {
    /// Every task `watch` was called for, in order.
    private(set) var watched: [String] = []
    private var watchers: [UInt64: (task: String, onUpdate: (ResultWatch.Update) -> Void)] = [:]
    private var next: UInt64 = 0
    /// Tasks beyond this many watchers are refused.
    var limit = Int.max

    func watch(_ taskId: String, _ onUpdate: @escaping (ResultWatch.Update) -> Void) -> ResultWatch.Token? {
        guard watchers.count < limit else { return nil }
        watched.append(taskId)
        next += 1
        watchers[next] = (taskId, onUpdate)
        return ResultWatch.Token(id: next)
    }

    func unwatch(_ token: ResultWatch.Token) { watchers[token.id] = nil }

    /// Watchers now.
    var active: Int { watchers.count }

    /// Hand `task`'s new state (nil: PENDING) to its watchers; the one shared update.
    @discardableResult
    func push(_ task: String, _ state: String?, result: String = "null") -> ResultWatch.Update {
        let record = state.map { #"{"status": "\#($0)", "result": \#(result), "task_id": "\#(task)"}"# }
        let update = ResultWatch.Update(taskId: task, record: record)
        for (_, w) in watchers.sorted(by: { $0.key < $1.key }) where w.task == task { w.onUpdate(update) }
        return update
    }
}

/// The hub's policy driven in-process: fake peers, fake results, a hand-moved clock, no sockets, no sleeps.
final class FrontendWebSocketHubTests: XCTestCase {
    let clock = ManualClock()
    let results = FakeResults()
    var trims = 0

    func hub(
        _ settings: WebSocketHub.Settings = .init(
            softLimitBytes: 1000, hardLimitBytes: 10_000, stuckSeconds: 10, idleMs: 60_000)
    ) -> WebSocketHub {
        var logger = Logger(label: "hub-test")
        logger.logLevel = .critical
        return WebSocketHub(
            settings: settings, logger: logger, clock: clock, releaseFreeMemory: { [unowned self] in trims += 1 },
            results: results)
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

    func testSubscribeNarrowsTheStreamToTheWatchedTasks() throws {
        let hub = hub()
        let narrow = FakePeer(id: 1)
        let everything = FakePeer(id: 2)
        hub.add(narrow)
        hub.add(everything)
        XCTAssertTrue(hub.command(#"{"subscribe": ["t1", "t3"]}"#, from: 1))
        XCTAssertEqual(results.watched, ["t1", "t3"])
        results.push("t1", nil)
        results.push("t3", nil)
        XCTAssertEqual(narrow.tasks, ["t1", "t3"], "each subscription's snapshot")
        XCTAssertEqual(try JSONParser.parse(narrow.received[0])["state"], "PENDING")
        XCTAssertEqual(hub.subscriptions(of: 1), ["t1", "t3"])
        XCTAssertTrue(hub.command(#"{"subscribe": ["t1"]}"#, from: 1))
        XCTAssertEqual(results.watched, ["t1", "t3"], "no second watch for a task already subscribed")

        // task_status goes to clients with no subscriptions only: `narrow` follows t1's result channel.
        hub.broadcast(message("t2", "PROGRESS"))
        hub.broadcast(message("t1", "PROGRESS"))
        XCTAssertEqual(narrow.tasks, ["t1", "t3"])
        XCTAssertEqual(everything.tasks, ["t2", "t1"])
        results.push("t1", "PROGRESS")
        XCTAssertEqual(narrow.tasks, ["t1", "t3", "t1"])
        XCTAssertEqual(everything.tasks, ["t2", "t1"], "result-channel updates go to subscribers only")

        XCTAssertTrue(hub.command(#"{"unsubscribe": ["t1"]}"#, from: 1))
        XCTAssertEqual(hub.subscriptions(of: 1), ["t3"])
        XCTAssertEqual(results.active, 1, "unsubscribing ends the watch")
        results.push("t1", "SUCCESS")
        results.push("t3", "SUCCESS", result: "5")
        XCTAssertEqual(narrow.tasks, ["t1", "t3", "t1", "t3"])
        XCTAssertEqual(try JSONParser.parse(try XCTUnwrap(narrow.received.last))["result"], 5)
        XCTAssertEqual(results.active, 0, "a final state ends the watch")
        XCTAssertEqual(hub.subscriptions(of: 1), [], "and the subscription")
        hub.broadcast(message("t5", "PROGRESS"))
        XCTAssertEqual(narrow.tasks.last, "t3", "its tasks finished, the client is still narrowed")
        XCTAssertTrue(hub.command(#"{"subscribe": ["t3"]}"#, from: 1))
        XCTAssertEqual(results.watched.last, "t3", "a finished task subscribed again is watched again")

        XCTAssertTrue(hub.command(#"{"unsubscribe": "*"}"#, from: 1))
        XCTAssertEqual(hub.subscriptions(of: 1), [])
        hub.broadcast(message("t4", "PROGRESS"))
        XCTAssertEqual(narrow.tasks.last, "t4", "no subscriptions: every task again")
    }

    func testAnUpdateGoesToEverySubscriberOfItsTaskAndOnlyToThem() {
        let hub = hub()
        let peers = (1...3).map { FakePeer(id: UInt64($0)) }
        for p in peers { hub.add(p) }
        XCTAssertTrue(hub.command(#"{"subscribe": ["shared"]}"#, from: 1))
        XCTAssertTrue(hub.command(#"{"subscribe": ["shared", "own"]}"#, from: 2))
        XCTAssertTrue(hub.command(#"{"subscribe": ["other"]}"#, from: 3))
        let update = results.push("shared", "PROGRESS")
        XCTAssertEqual(peers[0].received, [update.message])
        XCTAssertEqual(peers[1].received, [update.message])
        XCTAssertEqual(peers[2].received, [])
        XCTAssertEqual(hub.takeCounts().delivered, 2)
        hub.remove(2)
        XCTAssertEqual(results.active, 2, "a closed client's watches end")
    }

    func testFinishedTasksDoNotCountAgainstTheSubscriptionLimit() throws {
        var settings = WebSocketHub.Settings(softLimitBytes: 1000, hardLimitBytes: 10_000)
        settings.maxSubscriptions = 2
        let hub = hub(settings)
        let peer = FakePeer(id: 1)
        hub.add(peer)
        XCTAssertTrue(hub.command(#"{"subscribe": ["a", "b", "c"]}"#, from: 1))
        XCTAssertEqual(try JSONParser.parse(try XCTUnwrap(peer.received.last))["error"], "too_many_subscriptions")
        results.push("a", "SUCCESS")
        XCTAssertTrue(hub.command(#"{"subscribe": ["c"]}"#, from: 1))
        XCTAssertEqual(hub.subscriptions(of: 1), ["b", "c"])
        XCTAssertEqual(results.watched, ["a", "b", "c"])
    }

    func testSlowSubscriberLosesProgressButKeepsTheFinalState() {
        let hub = hub()
        let slow = FakePeer(id: 1)
        hub.add(slow)
        XCTAssertTrue(hub.command(#"{"subscribe": ["a"]}"#, from: 1))
        slow.queuedBytes = 5000
        results.push("a", "PROGRESS")
        results.push("a", "SUCCESS")
        XCTAssertEqual(slow.received.count, 1)
        XCTAssertEqual(try JSONParser.parse(slow.received[0])["state"], "SUCCESS")
        XCTAssertEqual(hub.takeCounts().dropped, 1)
    }

    func testWithoutTheFirehoseOnlySubscriptionsAreServed() {
        var settings = WebSocketHub.Settings(softLimitBytes: 1000, hardLimitBytes: 10_000)
        settings.firehose = false
        let hub = hub(settings)
        let idle = FakePeer(id: 1)
        let subscribed = FakePeer(id: 2)
        hub.add(idle)
        hub.add(subscribed)
        XCTAssertTrue(hub.command(#"{"subscribe": ["a"]}"#, from: 2))
        hub.broadcast(message("a", "PROGRESS"))
        XCTAssertEqual(idle.received, [], "no task_status fan-out at all")
        XCTAssertEqual(subscribed.received, [])
        results.push("a", "SUCCESS")
        XCTAssertEqual(subscribed.tasks, ["a"])
    }

    /// `broadcast` serves only the clients that take the firehose (kept as subscriptions come
    /// and go), so with every client subscribed a `task_status` message reaches nobody and costs no pass.
    func testTheFirehoseSetFollowsSubscriptionsAndClosedClients() {
        let hub = hub()
        let peers = (1...3).map { FakePeer(id: UInt64($0)) }
        hub.add(peers[0])
        hub.add(peers[1])
        hub.add(peers[2], firehose: false)
        XCTAssertEqual(hub.firehoseCount, 2, "a client without the firehose is not counted")
        XCTAssertTrue(hub.command(#"{"subscribe": ["a"]}"#, from: 1))
        XCTAssertTrue(hub.command(#"{"subscribe": ["b"]}"#, from: 2))
        XCTAssertEqual(hub.firehoseCount, 0)
        hub.broadcast(message("x", "PROGRESS"))
        XCTAssertEqual(hub.takeCounts().delivered, 0)
        results.push("a", "SUCCESS")
        XCTAssertEqual(hub.firehoseCount, 0, "a finished subscription leaves the client narrowed")
        XCTAssertTrue(hub.command(#"{"unsubscribe": "*"}"#, from: 1))
        XCTAssertTrue(hub.command(#"{"unsubscribe": ["b"]}"#, from: 2))
        XCTAssertEqual(hub.firehoseCount, 2, "no subscriptions left: the firehose again")
        hub.broadcast(message("y", "PROGRESS"))
        XCTAssertEqual(peers[0].tasks, ["a", "y"])
        XCTAssertEqual(peers[1].tasks, ["y"])
        XCTAssertEqual(peers[2].tasks, [])
        hub.remove(1)
        XCTAssertEqual(hub.firehoseCount, 1, "a removed client leaves the set")
        peers[1].queuedBytes = 20_000
        hub.broadcast(message("z", "PROGRESS"))  // over the hard limit: closed with 1013
        XCTAssertEqual(peers[1].closedWith?.code, 1013)
        XCTAssertEqual(hub.firehoseCount, 0, "a client closed as slow leaves the set")
    }

    /// A task's update is framed once, on the update, for every client that gets it, even when
    /// updates of several tasks interleave.
    func testAnUpdateIsFramedOnceOnItself() {
        let hub = hub()
        let peers = (1...2).map { FakePeer(id: UInt64($0)) }
        for p in peers { hub.add(p) }
        XCTAssertTrue(hub.command(#"{"subscribe": ["a", "b"]}"#, from: 1))
        XCTAssertTrue(hub.command(#"{"subscribe": ["a", "b"]}"#, from: 2))
        let a = results.push("a", "PROGRESS")
        let frameA = a.frame
        let b = results.push("b", "PROGRESS")
        XCTAssertNotNil(frameA)
        XCTAssertTrue(a.frame === frameA, "kept on the update")
        XCTAssertFalse(a.frame === b.frame, "each update its own frame")
        XCTAssertEqual(peers[0].received, [a.message, b.message])
        XCTAssertEqual(peers[1].received, [a.message, b.message])
    }

    func testASubscriptionTheWatchRefusesIsAnsweredWithAnError() throws {
        let hub = hub()
        let peer = FakePeer(id: 1)
        hub.add(peer)
        results.limit = 1
        XCTAssertTrue(hub.command(#"{"subscribe": ["a", "b"]}"#, from: 1))
        XCTAssertEqual(hub.subscriptions(of: 1), ["a"])
        XCTAssertEqual(try JSONParser.parse(try XCTUnwrap(peer.received.last))["error"], "overloaded")
    }

    func testOtherTextIsNotACommand() {
        let hub = hub()
        hub.add(FakePeer(id: 1))
        for text in ["hello", "[1]", #"{"other": 1}"#, "{", #"{"subscribe": "t1"}"#] {
            XCTAssertFalse(hub.command(text, from: 1), text)
        }
        XCTAssertFalse(hub.command(#"{"subscribe": ["t1"]}"#, from: 99), "unknown client")
        XCTAssertEqual(hub.subscriptions(of: 1), [])
        XCTAssertTrue(results.watched.isEmpty)
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
