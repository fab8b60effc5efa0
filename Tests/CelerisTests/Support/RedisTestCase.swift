import FastCore
import Foundation
import XCTest

/// A test case with its own redis-server on a random loopback port and a client to it.
class RedisTestCase: XCTestCase {
    var redis: RedisServer!
    var client: RedisConnection!

    override func setUpWithError() throws {
        redis = try RedisServer()
        client = try redis.client()
    }

    override func tearDown() {
        client = nil
        redis.stop()
    }

    /// Queue messages the way a kombu producer does.
    func enqueue(_ messages: [TaskMessage]) throws {
        var producer = TaskProducer()
        for reply in try client.pipeline(messages.flatMap { producer.sendCommands(for: $0) }) {
            XCTAssertNil(reply.errorMessage)
        }
    }

    /// A task's stored result record, or nil.
    func result(_ id: String) throws -> JSON? { try client.result(id) }
}

/// A test case with a Redis and a celeris-frontend started with `frontendFlags`.
class FrontendTestCase: RedisTestCase {
    var port = 0
    var frontend: Spawned!

    /// Extra command-line flags for the frontend under test.
    var frontendFlags: [String] { [] }

    override func setUpWithError() throws {
        try super.setUpWithError()
        port = freePort()
        frontend = try CelerisProcess.frontend(redis: redis, port: port, extra: frontendFlags)
    }

    override func tearDown() {
        frontend.stop()
        super.tearDown()
    }
}
