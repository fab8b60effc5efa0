import FastCore
import Foundation
import XCTest

/// Routing rules, priority steps and fair consumption of several queues.
final class RoutingTests: XCTestCase {
    func testRoutesMatchLikeCeleryTaskRoutes() throws {
        var routes = DocumentTasks.routes
        XCTAssertEqual(routes.queue(for: "fetch_documents_task"), "fetch_queue")
        XCTAssertEqual(routes.queue(for: "tasks.extract_data_task"), "extract_queue")
        XCTAssertNil(routes.queue(for: "add"))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("routes-\(UUID().uuidString).json")
        try Data(#"{"task_routes": {"report.*": {"queue": "reports"}, "add": "math"}}"#.utf8).write(to: file)
        try routes.add(file: file.path)
        try routes.add(flag: "report.daily=urgent")
        XCTAssertEqual(routes.queue(for: "report.daily"), "urgent")
        XCTAssertEqual(routes.queue(for: "report.weekly"), "reports")
        XCTAssertEqual(routes.queue(for: "add"), "math")
        XCTAssertThrowsError(try routes.add(flag: "no-equals"))
    }

    func testFrontendRoutesTasksWithoutAQueue() throws {
        let redis = try RedisServer()
        let client = try redis.client()
        let port = freePort()
        let frontend = try CelerisProcess.frontend(
            redis: redis, port: port,
            extra: [
                "--route", "report_*=reports", "--allow-task", "report_daily", "--allow-task", "extract_data_task",
                "--allow-queue", "custom",
            ])
        for body in [
            #"{"task": "report_daily"}"#, #"{"task": "extract_data_task", "args": ["a.txt"]}"#,
            #"{"task": "report_daily", "queue": "custom"}"#, #"{"task": "add", "args": [1, 2]}"#,
        ] {
            XCTAssertEqual(try HTTPClient.request("POST", port: port, path: "/tasks", body: body).status, 200)
        }
        for (queue, n) in [("reports", 1), ("extract_queue", 1), ("custom", 1), ("celery", 1)] {
            XCTAssertEqual(try client.command("LLEN", queue).integer, Int64(n), queue)
        }
        let routed = try TaskMessage.decode(try XCTUnwrap(try client.command("LINDEX", "reports", "0").bytes))
        XCTAssertEqual(routed.routingKey, "reports")
        XCTAssertTrue(frontend.isRunning)
    }

    func testTaskSendsTaskToItsRoutedQueueAsItsParent() throws {
        let redis = try RedisServer()
        let client = try redis.client()
        let worker = InProcessWorker(redis: redis, routes: DocumentTasks.routes) { r in
            r.register("fan_out") { ctx in .string(ctx.send("extract_data_task", args: ["doc.txt"])) }
        }
        let parent = TaskMessage(task: "fan_out")
        var producer = TaskProducer()
        _ = try client.pipeline(producer.sendCommands(for: parent))
        XCTAssertTrue(try eventually(timeout: 5) { try client.command("LLEN", "extract_queue").integer == 1 })
        worker.stop()
        let child = try TaskMessage.decode(try XCTUnwrap(try client.command("LINDEX", "extract_queue", "0").bytes))
        XCTAssertEqual(child.task, "extract_data_task")
        XCTAssertEqual(child.parentId, parent.id)
        XCTAssertEqual(child.rootId, parent.id)
        let result = try JSONParser.parse(try XCTUnwrap(try client.command("GET", ResultRecord.key(parent.id)).bytes))
        XCTAssertEqual(result["result"], .string(child.id))
    }

    /// kombu serves step 0 first: priority 0 before 3, 6 and 9 (Celery on Redis).
    func testPriorityStepsAreServedInKombuOrder() throws {
        let redis = try RedisServer()
        let client = try redis.client()
        var producer = TaskProducer()
        let messages = [9, 6, 3, 0].map { p in TaskMessage(task: "record", args: [.int(Int64(p))], priority: p) }
        _ = try client.pipeline(messages.flatMap { producer.sendCommands(for: $0) })
        let order = LockedBox<[Int64]>([])
        let worker = InProcessWorker(redis: redis, concurrency: 1, prefetch: 1) { r in
            r.register("record") { ctx in
                let p = try ctx.int(0, "p")
                order.modify { $0.append(p) }
                return nil
            }
        }
        XCTAssertTrue(eventually(timeout: 5) { order.get().count == 4 })
        worker.stop()
        XCTAssertEqual(order.get(), [0, 3, 6, 9])
    }

    /// Several queues are consumed in rotation, as kombu does: a long queue never starves another.
    func testSeveralQueuesAreConsumedInRotation() throws {
        let redis = try RedisServer()
        let client = try redis.client()
        var producer = TaskProducer()
        let a = (0..<20).map { _ in TaskMessage(task: "record_queue", args: ["a"], queue: "a") }
        let b = (0..<5).map { _ in TaskMessage(task: "record_queue", args: ["b"], queue: "b") }
        _ = try client.pipeline((a + b).flatMap { producer.sendCommands(for: $0) })
        let order = LockedBox<[String]>([])
        let worker = InProcessWorker(redis: redis, queues: ["a", "b"], concurrency: 1, prefetch: 1) { r in
            r.register("record_queue") { ctx in
                let q = ctx.argument(0, "q")?.stringValue ?? "?"
                order.modify { $0.append(q) }
                return nil
            }
        }
        XCTAssertTrue(eventually(timeout: 10) { order.get().count == 25 })
        worker.stop()
        XCTAssertEqual(Array(order.get().prefix(10)), ["a", "b", "a", "b", "a", "b", "a", "b", "a", "b"])
    }
}
