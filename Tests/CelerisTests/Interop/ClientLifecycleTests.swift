@testable import FastCore
import Foundation
import XCTest

/// `CelerisClient`'s life cycle against a real redis-server: what `close()` does to calls
/// in flight and after it, what it frees, cancellation, options Python cannot hold, and a
/// Redis that refuses the client's password.
final class ClientLifecycleTests: XCTestCase {
    private var redis: RedisServer!

    override func setUpWithError() throws {
        redis = try RedisServer()
    }

    override func tearDown() {
        redis.stop()
    }

    /// `body`'s error, failing the test when it takes longer than `seconds` (a hang ends the
    /// test instead of blocking it).
    private func promptError(
        within seconds: Double, _ what: String, _ body: @escaping @Sendable () async throws -> Void
    ) async -> Error? {
        let outcome = LockedBox<Error??>(nil)
        let ended = expectation(description: what)
        Task {
            do {
                try await body()
                outcome.set(.some(nil))
            } catch {
                outcome.set(.some(error))
            }
            ended.fulfill()
        }
        await fulfillment(of: [ended], timeout: seconds)
        return outcome.get() ?? nil
    }

    private static func openDescriptors() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
    }

    /// (1) A command Redis has not answered when `close()` runs fails at once with `.closed`.
    func testCloseFailsACommandAwaitingItsReply() async throws {
        let client = try CelerisClient(broker: redis.url)
        _ = try await client.send("add", args: [1, 2])  // connected, queue declared: the next send is one LPUSH
        let db = try redis.client()
        _ = try db.command("CLIENT", "PAUSE", "20000", "WRITE")
        defer { _ = try? db.command("CLIENT", "UNPAUSE") }
        let sent = Task { try await client.send("add", args: [3, 4]) }
        // The LPUSH reached Redis, which holds it (its reply is owed).
        let lpushHeld = try await eventuallySuspending(timeout: 10) {
            (try db.command("CLIENT", "LIST").text ?? "").contains("cmd=lpush")
        }
        XCTAssertTrue(lpushHeld)
        let start = ContinuousClock.now
        await client.close()
        let ended = expectation(description: "send ends")
        let outcome = LockedBox<Error?>(nil)
        Task {
            do { _ = try await sent.value } catch { outcome.set(error) }
            ended.fulfill()
        }
        await fulfillment(of: [ended], timeout: 5)
        XCTAssertEqual(outcome.get() as? CelerisClientError, .closed)
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(5))
    }

    /// (1) Clients made and closed leave no descriptor behind (connections, event base, bell).
    func testCreateCloseCyclesLeaveDescriptorCountFlat() async throws {
        func cycle() async throws {
            let client = try CelerisClient(broker: redis.url)
            _ = try await client.send("add", args: [1, 2])
            let e = await thrown { try await client.handle(for: "none").get(timeout: .milliseconds(50)) }
            XCTAssertEqual(e as? CelerisClientError, .timedOut(taskId: "none", after: .milliseconds(50)))
            await client.close()
        }
        try await cycle()  // warm up whatever opens once per process
        let before = Self.openDescriptors()
        for _ in 0..<20 { try await cycle() }
        // Each client's loop thread ends, and frees what it held, after close returned.
        var after = Self.openDescriptors()
        let descriptorsBack = await eventuallySuspending(timeout: 10) {
            after = Self.openDescriptors()
            return after <= before + 2
        }
        XCTAssertTrue(descriptorsBack, "descriptors: \(before) before 20 create/close cycles, \(after) after")
    }

    /// (2) Every public call after `close()` fails (or ends) at once.
    func testEveryCallAfterCloseEndsPromptly() async throws {
        let client = try CelerisClient(broker: redis.url)
        let handle = try await client.send("add", args: [1, 2])
        await client.close()
        let connected = LockedBox<Bool?>(nil)
        let e0 = await promptError(within: 5, "isConnected") { connected.set(await client.isConnected()) }
        XCTAssertNil(e0)
        XCTAssertEqual(connected.get(), false)
        let calls: [(String, @Sendable () async throws -> Void)] = [
            ("send", { _ = try await client.send("add", args: [1, 2]) }),
            ("typed send", { _ = try await client.send(TaskReference<[Int], Int>("add"), [1, 2]) }),
            ("canvas", { _ = try await client.send(Canvas.task(Signature("add", args: [1, 2]))) }),
            ("revoke", { try await client.revoke(handle.id) }),
            ("get", { _ = try await handle.get(timeout: .seconds(30)) }),
            ("status", { _ = try await handle.status(timeout: .seconds(30)) }),
            ("handle.revoke", { try await handle.revoke(terminate: true) }),
            ("states", { for try await _ in handle.states {} }),
        ]
        for (name, call) in calls {
            let e = await promptError(within: 5, name, call)
            XCTAssertEqual(e as? CelerisClientError, .closed, "\(name): \(String(describing: e))")
        }
        let again = await promptError(within: 5, "close again") { await client.close() }
        XCTAssertNil(again)
    }

    /// (3) A `get` whose task is cancelled ends with CancellationError at once, whether the
    /// cancellation came before the wait started or during it.
    func testCancelledGetEndsAtOnce() async throws {
        let client = try CelerisClient(broker: redis.url)
        let handle = client.handle(for: TaskMessage.newId())
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            _ = try await handle.get(timeout: .seconds(30))
        }
        let late = Task { _ = try await handle.get(timeout: .seconds(30)) }
        late.cancel()
        for (name, task) in [("cancelled before", early), ("cancelled while", late)] {
            let e = await promptError(within: 2, name) { try await task.value }
            XCTAssertTrue(e is CancellationError, "\(name): \(String(describing: e))")
        }
        await client.close()
    }

    /// (4) The stored record read after subscribing never follows a newer published one.
    func testStoredRecordReadDuringAPublishIsDropped() {
        var gate = ReadGate()
        gate.readStarted()
        gate.published()  // PROGRESS published while the GET was under way
        XCTAssertFalse(gate.readFinished(), "the GET's (older) record arrives after the published one")
        gate.readStarted()
        XCTAssertTrue(gate.readFinished(), "nothing published during the GET: its record is news")
        gate.published()  // after the read: no effect on a later one
        gate.readStarted()
        XCTAssertTrue(gate.readFinished())
        var idle = ReadGate()
        idle.published()
        idle.readStarted()
        XCTAssertTrue(idle.readFinished(), "a message before the GET was sent does not drop its reply")
    }

    /// (5) Times Python's datetime cannot hold (after 9999-12-31T23:59:59, not finite) are refused.
    func testTimesPastYear9999AreRefused() async throws {
        let client = try CelerisClient(broker: redis.url)
        let last = Date(timeIntervalSince1970: SendOptions.latestEpoch)
        let bad: [(String, SendOptions)] = [
            ("eta", SendOptions(eta: last.addingTimeInterval(1))),
            ("eta inf", SendOptions(eta: Date(timeIntervalSince1970: .infinity))),
            ("countdown", SendOptions(countdown: SendOptions.latestEpoch)),
            ("expires at", SendOptions(expires: .at(last.addingTimeInterval(1)))),
            ("expires after", SendOptions(expires: .after(SendOptions.latestEpoch))),
            ("expires nan", SendOptions(expires: .after(.nan))),
        ]
        for (name, options) in bad {
            let e = await thrown { try await client.send("add", args: [1, 2], options: options) }
            guard case .invalidOption(let why)? = e as? CelerisClientError else {
                XCTFail("\(name): \(String(describing: e))")
                continue
            }
            XCTAssertTrue(why.contains("9999") || why.contains("finite"), "\(name): \(why)")
        }
        let db = try redis.client()
        XCTAssertEqual(try db.command("LLEN", "celery").integer, 0, "nothing was sent")
        _ = try await client.send("add", args: [1, 2], options: SendOptions(eta: last, expires: .at(last)))
        XCTAssertEqual(try db.command("LLEN", "celery").integer, 1)
        await client.close()
    }

    /// (6) A Redis that refuses the password: send and get fail with an error naming auth, not a hang.
    func testRefusedPasswordFailsWithAClearError() async throws {
        let db = try redis.client()
        _ = try db.command("CONFIG", "SET", "requirepass", "s3cret")
        for url in ["redis://127.0.0.1:\(redis.port)/0", "redis://:wrong@127.0.0.1:\(redis.port)/0"] {
            let client = try CelerisClient(broker: url, connectTimeout: 1)
            let sent = await promptError(within: 10, "send \(url)") { _ = try await client.send("add", args: [1]) }
            guard case .notConnected(let why)? = sent as? CelerisClientError else {
                XCTFail("send to \(url): \(String(describing: sent))")
                await client.close()
                continue
            }
            XCTAssertTrue(why.lowercased().contains("auth"), "send to \(url): \(why)")
            let got = await promptError(within: 10, "get \(url)") {
                _ = try await client.handle(for: "t").get(timeout: .seconds(2))
            }
            guard case .notConnected(let about)? = got as? CelerisClientError else {
                XCTFail("get from \(url): \(String(describing: got))")
                await client.close()
                continue
            }
            XCTAssertTrue(about.lowercased().contains("auth"), "get from \(url): \(about)")
            await client.close()
        }
        // The right password works.
        let client = try CelerisClient(broker: "redis://:s3cret@127.0.0.1:\(redis.port)/0", connectTimeout: 5)
        _ = try await client.send("add", args: [1, 2])
        let e = await thrown { try await client.handle(for: "t").get(timeout: .milliseconds(300)) }
        XCTAssertEqual(e as? CelerisClientError, .timedOut(taskId: "t", after: .milliseconds(300)))
        await client.close()
    }
}
