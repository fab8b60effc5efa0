import FastCore
import Foundation
import XCTest

/// Clients POST /tasks in a loop through a frontend on `sentinel://…?master_name=…` while the
/// master is SIGKILLed mid-stream; the sentinels promote the replica, the old master comes back as
/// a replica of the new one, the clients go on; then a worker drains. A task answered 200 that
/// never got a result is lost; one the worker ran twice is duplicated. With `--durable-enqueue 1`
/// every 200 was on the replica when it was answered, so none is lost; without it the tasks the
/// master acknowledged but had not streamed to the replica yet are lost (that window is what
/// durable enqueue closes). The lag is made certain rather than left to
/// timing: right before the kill the replica is SIGSTOPped and its link cut (`CLIENT KILL TYPE
/// replica`) until the master took 20 pushes it could not stream.
final class SentinelFailoverEnqueueTests: XCTestCase {
    /// What one run saw.
    struct Tally: CustomStringConvertible {
        var answered: Int
        var answeredAfterFailover: Int
        var statuses: [Int: Int]
        var errors: [String: Int]
        var lost: [String]
        var duplicated: [String]
        var description: String {
            "answered 200: \(answered) (\(answeredAfterFailover) after the failover), lost: \(lost.count), "
                + "duplicated: \(duplicated.count), statuses: \(statuses.sorted { $0.key < $1.key }), "
                + "errors: \(errors.sorted { $0.key < $1.key })"
        }
    }

    func testDurableEnqueueLosesNoAnsweredTaskOnFailover() throws {
        let tally = try failoverRun(durable: true)
        print("failover with --durable-enqueue 1: \(tally)")
        XCTAssertEqual(tally.lost, [], "tasks answered 200 with durable enqueue must survive the failover")
        XCTAssertEqual(tally.duplicated, [])
        XCTAssertGreaterThan(tally.answeredAfterFailover, 0)
        // The pushes the master took while its replica's link was cut were refused, not answered 200.
        XCTAssertGreaterThan(tally.errors["not_replicated", default: 0], 0, "the cut-off pushes must be refused")
    }

    func testWithoutDurableEnqueueLossesAreCounted() throws {
        let tally = try failoverRun(durable: false)
        print("failover without durable enqueue: \(tally)")
        XCTAssertEqual(tally.errors["not_replicated", default: 0], 0)
        XCTAssertGreaterThan(tally.answeredAfterFailover, 0)
        // The pushes answered 200 while the replica's link was cut are gone with the old master.
        XCTAssertGreaterThan(tally.lost.count, 0, "without WAIT a 200 does not mean a replica has the task")
    }

    private func failoverRun(durable: Bool) throws -> Tally {
        let cluster = try SentinelCluster()
        defer { cluster.stop() }
        let port = freePort()
        let frontend = try Spawned(
            try TestPaths.executable("celeris-frontend"),
            ["-b", cluster.url, "--host", "127.0.0.1", "--port", "\(port)", "--loglevel", "debug"]
                + (durable ? ["--durable-enqueue", "1", "--durable-timeout-ms", "500"] : []),
            name: "frontend-failover")
        defer { frontend.stop() }
        let up = eventually(timeout: 20) {
            (try? HTTPClient.request("GET", port: port, path: "/health").status) == 200
        }
        XCTAssertTrue(up, frontend.log)

        // Four clients POST until told to stop; every answer is kept. After a 503 (or no answer) a
        // client backs off ~10 ms, as a real one would, instead of hammering the frontend.
        let answers = LockedBox<[(status: Int, id: String?, error: String?)]>([])
        let stop = LockedBox(false)
        let group = DispatchGroup()
        for _ in 0..<4 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                while !stop.get() {
                    guard let r = try? HTTPClient.request("POST", port: port, path: "/tasks?task_length=0") else {
                        answers.modify { $0.append((0, nil, "no answer")) }
                        usleep(10_000)
                        continue
                    }
                    let json = r.json
                    answers.modify {
                        $0.append((r.status, json?["task_id"]?.stringValue, json?["error"]?.stringValue))
                    }
                    if r.status == 503 { usleep(10_000) }
                }
            }
        }
        defer {
            stop.set(true)
            group.wait()
        }
        func answered() -> Int { answers.get().lazy.filter { $0.status == 200 }.count }

        XCTAssertTrue(eventually(timeout: 20) { answered() >= 300 }, "no stream of 200s before the kill")
        // Replication lag, made certain: the replica stopped and its link cut, the master takes
        // 20 more pushes it cannot stream, then dies; the replica (resumed) is promoted without them.
        let old = try XCTUnwrap(cluster.sentinelMaster())
        let oldMaster = try cluster.client(port: old)
        let replicaPort = try XCTUnwrap(cluster.dataPorts.first { $0 != old })
        let replicaPid = try XCTUnwrap(
            try cluster.client(port: replicaPort).info("server", "process_id"), "replica's pid")
        kill(pid_t(replicaPid), SIGSTOP)
        XCTAssertEqual(try oldMaster.command("CLIENT", "KILL", "TYPE", "replica").integer, 1)
        let before = try XCTUnwrap(try oldMaster.command("LLEN", "celery").integer)
        XCTAssertTrue(
            eventually(timeout: 10, interval: 0.001) {
                (try? oldMaster.command("LLEN", "celery").integer).map { $0 >= before + 20 } ?? false
            })
        XCTAssertEqual(try cluster.killMaster(), old)
        kill(pid_t(replicaPid), SIGCONT)
        let new = try cluster.waitForNewMaster(otherThan: old, timeout: 30)
        let atFailover = answered()
        // The old master back as the new one's replica (durable enqueue needs one to answer 200).
        try cluster.restartData(old, replicaOf: new)
        XCTAssertTrue(
            eventually(timeout: 30) { answered() >= atFailover + 300 }, "no 200s after the failover: \(frontend.log)")
        stop.set(true)
        group.wait()

        let all = answers.get()
        let ids = all.compactMap { $0.status == 200 ? $0.id : nil }
        XCTAssertEqual(Set(ids).count, ids.count)

        let worker = try Spawned(
            try TestPaths.executable("celeris-worker"), ["-b", cluster.url, "-c", "2", "--loglevel", "debug"],
            env: ["CELERIS_STEP_SECONDS": "0"], name: "worker-failover")
        defer { worker.stop() }
        let master = try cluster.client(port: new)
        let drained = eventually(timeout: 60, interval: 0.1) {
            (try? master.command("LLEN", "celery").integer) == 0
                && (try? master.command("HLEN", "unacked").integer) == 0
                && (try? master.command("ZCARD", "unacked_index").integer) == 0
        }
        XCTAssertTrue(drained, worker.log)
        // Early ack: a message leaves `unacked` before it runs; tasks of no steps finish at once.
        eventually(timeout: 5) { ids.allSatisfy { (try? master.command("EXISTS", ResultRecord.key($0)).integer) == 1 } }
        var lost: [String] = []
        for id in ids {
            let record = try master.result(id)
            if record == nil { lost.append(id) } else { XCTAssertEqual(record?["status"]?.stringValue, "SUCCESS") }
        }
        let log = worker.log
        let duplicated = ids.filter { id in log.components(separatedBy: "create_task[\(id)] succeeded").count > 2 }
        var statuses: [Int: Int] = [:]
        var errors: [String: Int] = [:]
        for a in all {
            statuses[a.status, default: 0] += 1
            if let e = a.error { errors[e, default: 0] += 1 }
        }
        return Tally(
            answered: ids.count, answeredAfterFailover: ids.count - atFailover, statuses: statuses, errors: errors,
            lost: lost, duplicated: duplicated)
    }
}
