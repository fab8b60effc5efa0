@testable import FastCore
import Foundation
import XCTest

/// Sentinels that answer badly: one trickling its reply a byte at a time (each receive within the
/// read timeout, the whole never), one declaring a 4 GB bulk string and streaming it. The lookup
/// bounds each whole reply (1 s per sentinel) and the bytes of one reply (64 KiB), counts either
/// as that sentinel failing and asks the next; a worker given such a sentinel still starts on the
/// good ones and exits on SIGTERM. The hostile sentinels are a Python listener on loopback
/// (`FakeSentinel`); the good ones a real `SentinelCluster`.
final class HostileSentinelTests: XCTestCase {
    var cluster: SentinelCluster?
    var fakes: [FakeSentinel] = []

    override func tearDown() {
        fakes.forEach { $0.stop() }
        fakes = []
        cluster?.stop()
        cluster = nil
    }

    private func fake(_ mode: String) throws -> FakeSentinel {
        let f = try FakeSentinel(mode: mode)
        fakes.append(f)
        return f
    }

    /// A trickling sentinel alone: the lookup gives up within its bound, saying why.
    func testTricklingSentinelFailsWithinTheReplyBound() throws {
        let trickle = try fake("trickle")
        let endpoint = try RedisEndpoint(url: "sentinel://127.0.0.1:\(trickle.port)?master_name=mymaster")
        let sentinel = try XCTUnwrap(endpoint.sentinel)
        let started = Date()
        let result = SentinelClient.master(of: sentinel, timeoutMs: 1000)
        let took = Date().timeIntervalSince(started)
        guard case .failure(let failure) = result else { return XCTFail("a trickling sentinel answered: \(result)") }
        XCTAssertTrue(failure.description.contains("no reply within 1000 ms"), failure.description)
        XCTAssertLessThan(took, 3, "the lookup took \(took) s")
        XCTAssertTrue(trickle.log.contains("trickling"), "the fake never started trickling: \(trickle.log)")
    }

    /// A trickling sentinel first, then the real ones: a connection reaches the master within
    /// 5 s; a worker started on that URL comes up and exits promptly on SIGTERM.
    func testTricklingSentinelIsSkippedAndTheWorkerStillStops() throws {
        let trickle = try fake("trickle")
        let cluster = try SentinelCluster()
        self.cluster = cluster
        let url = "sentinel://127.0.0.1:\(trickle.port)/0;" + cluster.url()
        let endpoint = try RedisEndpoint(url: url)
        XCTAssertEqual(
            endpoint.sentinel?.askingOrder.first?.port, trickle.port, "the trickling sentinel is asked first")
        let started = Date()
        let r = try RedisConnection(endpoint: endpoint, timeoutMs: 1000)
        let took = Date().timeIntervalSince(started)
        XCTAssertEqual(r.server.port, cluster.dataPorts[0])
        XCTAssertLessThan(took, 5, "reaching the master past a trickling sentinel took \(took) s")
        print("HOSTILE-SENTINEL-FIGURE trickle: master reached in \(took) s past a trickling sentinel")

        // The worker's lookups and its sentinel watch meet the trickling sentinel first too.
        let worker = try Spawned(
            try TestPaths.executable("celeris-worker"), ["-b", url, "-c", "1", "--loglevel", "debug"],
            env: ["CELERIS_STEP_SECONDS": "0"], name: "hostile-sentinel-worker")
        defer { worker.stop() }
        let pidbox = KombuEnvelope.fanoutChannel(db: 0, exchange: "celery.pidbox")
        let master = cluster.dataPorts[0]
        XCTAssertTrue(
            eventually(timeout: 30) {
                (try? cluster.client(port: master, timeoutMs: 500).command("PUBSUB", "NUMSUB", pidbox).elements?
                    .last?.integer) == 1
            }, "the worker never came up past the trickling sentinel: \(worker.log)")
        assertExitsOnSIGTERM(worker, figure: "trickle")
    }

    /// A worker whose only sentinel trickles keeps looking for its master and still exits on SIGTERM.
    func testWorkerBehindOnlyATricklingSentinelExitsOnSIGTERM() throws {
        let trickle = try fake("trickle")
        let worker = try Spawned(
            try TestPaths.executable("celeris-worker"),
            ["-b", "sentinel://127.0.0.1:\(trickle.port)?master_name=mymaster", "-c", "1", "--loglevel", "debug"],
            env: ["CELERIS_STEP_SECONDS": "0"], name: "trickle-only-worker")
        defer { worker.stop() }
        XCTAssertTrue(
            eventually(timeout: 20) { trickle.trickled >= 2 }, "the worker never asked twice: \(worker.log)")
        assertExitsOnSIGTERM(worker, figure: "trickle-only")
    }

    /// SIGTERM to the worker: it exits within 10 s (printed as a HOSTILE-SENTINEL-FIGURE).
    private func assertExitsOnSIGTERM(
        _ worker: Spawned, figure: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        let stopping = Date()
        worker.process.terminate()
        XCTAssertTrue(
            eventually(timeout: 15) { !worker.isRunning }, "the worker ignored SIGTERM: \(worker.log)", file: file,
            line: line)
        let stopped = Date().timeIntervalSince(stopping)
        XCTAssertLessThan(stopped, 10, worker.log, file: file, line: line)
        print("HOSTILE-SENTINEL-FIGURE \(figure): worker exited \(stopped) s after SIGTERM")
    }

    /// A sentinel streaming a declared 4 GB answer: the link fails past 64 KiB with a clear error,
    /// the process's memory barely grows, and the next sentinel is asked.
    func testHugeSentinelReplyIsCappedAndTheNextSentinelAsked() throws {
        let huge = try fake("huge")
        let alone = try XCTUnwrap(
            try RedisEndpoint(url: "sentinel://127.0.0.1:\(huge.port)?master_name=mymaster").sentinel)
        let before = try Self.memory()
        let result = SentinelClient.master(of: alone, timeoutMs: 1000)
        let after = try Self.memory()
        guard case .failure(let failure) = result else { return XCTFail("a flooding sentinel answered: \(result)") }
        XCTAssertTrue(failure.description.contains("reply larger than 65536 bytes"), failure.description)
        XCTAssertTrue(huge.log.contains("flooding"), "the fake never started flooding: \(huge.log)")
        let grewMB = Double(max(after.peak - before.peak, after.resident - before.resident)) / 1_048_576
        XCTAssertLessThan(grewMB, 100, "memory grew \(grewMB) MB")
        print("HOSTILE-SENTINEL-FIGURE huge: lookup failed with '\(failure)'; memory grew \(grewMB) MB")

        let cluster = try SentinelCluster()
        self.cluster = cluster
        let url = "sentinel://127.0.0.1:\(huge.port)/0;" + cluster.url()
        let r = try RedisConnection(endpoint: try RedisEndpoint(url: url), timeoutMs: 1000)
        XCTAssertEqual(r.server.port, cluster.dataPorts[0])
        let last = try Self.memory()
        XCTAssertLessThan(Double(last.peak - before.peak) / 1_048_576, 100, "peak memory grew")
    }

    /// This process's resident and peak memory (VmRSS, VmHWM), in bytes.
    static func memory() throws -> (resident: Int, peak: Int) {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        func field(_ name: String) throws -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }),
                let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
            else { throw TestFailure("no \(name) in /proc/self/status") }
            return kb * 1024
        }
        return (try field("VmRSS"), try field("VmHWM"))
    }
}

/// A hostile sentinel on a free loopback port (a Python listener): `trickle` answers
/// GET-MASTER-ADDR-BY-NAME (and SUBSCRIBE) with `*2 $9 127.0.0.1 $100000` then one byte every
/// 0.5 s; `huge` with `*2 $9 127.0.0.1 $4000000000` then 1 MiB chunks as fast as they go.
/// Anything else gets `+OK`. Each answer it starts is logged ("trickling", "flooding").
final class FakeSentinel {
    let port: Int
    private let process: Spawned

    static let script = """
        import socket, sys, threading, time
        mode = sys.argv[1]
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        print("port", s.getsockname()[1], flush=True)
        def serve(c):
            try:
                while True:
                    data = c.recv(65536)
                    if not data:
                        return
                    upper = data.upper()
                    if b"GET-MASTER-ADDR-BY-NAME" in upper or b"SUBSCRIBE" in upper:
                        if mode == "trickle":
                            print("trickling", flush=True)
                            c.sendall(b"*2\\r\\n$9\\r\\n127.0.0.1\\r\\n$100000\\r\\n")
                            while True:
                                c.sendall(b"1")
                                time.sleep(0.5)
                        else:
                            print("flooding", flush=True)
                            c.sendall(b"*2\\r\\n$9\\r\\n127.0.0.1\\r\\n$4000000000\\r\\n")
                            chunk = b"1" * (1 << 20)
                            while True:
                                c.sendall(chunk)
                    else:
                        c.sendall(b"+OK\\r\\n")
            except Exception:
                return
            finally:
                c.close()
        while True:
            c, _ = s.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()
        """

    init(mode: String) throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("fake-sentinel-\(UUID()).py")
        try Self.script.write(to: file, atomically: true, encoding: .utf8)
        let spawned = try Spawned(try TestPaths.python(), ["-u", file.path, mode], name: "fake-sentinel-\(mode)")
        process = spawned
        var found: Int?
        _ = eventually(timeout: 10) {
            found = spawned.log.split(separator: "\n").first { $0.hasPrefix("port ") }.flatMap {
                Int($0.dropFirst("port ".count))
            }
            return found != nil
        }
        guard let port = found else {
            spawned.stop(grace: 1)
            throw TestFailure("the fake sentinel did not start: \(spawned.log)")
        }
        self.port = port
    }

    var log: String { process.log }
    /// How many answers it began to trickle.
    var trickled: Int { log.components(separatedBy: "trickling").count - 1 }

    func stop() { process.stop(grace: 1) }
}
