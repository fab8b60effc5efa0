import Benchmark
import FastCore
import Foundation

/// The worker's per-task codec work, one task per iteration: decode a Celery
/// envelope, encode one, encode a result record with its store commands, and
/// RESP format/parse. Wall time, CPU, and mallocs (MallocInterposer).
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput], maxDuration: .seconds(2),
        maxIterations: 1_000_000)

    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../Tests/CelerisTests/Fixtures").standardized
    // A real Celery 5.7 client's envelope (captured), and one Celeris writes.
    let captured = (try? Array(Data(contentsOf: fixtures.appendingPathComponent("celery57_noop_envelope.json")))) ?? []
    let message = TaskMessage(task: "add", args: [2, 3])
    let written = message.envelopeBytes()
    let record = ResultRecord(taskId: message.id, state: .success, result: 5, dateDone: 1_795_251_688.699)
    let claimReply = RESP.format(
        (0..<64).flatMap { _ in [message.deliveryTag, "celery", String(decoding: written, as: UTF8.self)] })

    Benchmark("Envelope decode (captured Celery 5.7 noop)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? TaskMessage.decode(captured, queue: "celery")) }
    }
    Benchmark("Envelope decode (Celeris-written add)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? TaskMessage.decode(written, queue: "celery")) }
    }
    Benchmark("Envelope encode") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(message.envelopeBytes()) }
    }
    Benchmark("Result encode (SETEX + PUBLISH commands)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(record.storeCommands()) }
    }
    Benchmark("Result to RESP, as an executor posts it (record straight into a batch part)") { benchmark in
        for _ in benchmark.scaledIterations {
            var part = WriteBatch.Part()
            part.store(record)
            part.acknowledge(message.deliveryTag)
            blackHole(part)
        }
    }
    Benchmark("RESP format LPUSH") { benchmark in
        let args = ["LPUSH", "celery", String(decoding: written, as: UTF8.self)]
        for _ in benchmark.scaledIterations { blackHole(RESP.format(args)) }
    }
    Benchmark("RESP parse claim reply (64 deliveries)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(RESP.parse(claimReply)) }
    }
    Benchmark("Claim reply to deliveries, read in place (64; default hiredis reply objects)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? RESP.parse(claimReply) { try DeliveryClaim.deliveries($0) })
        }
    }
}
