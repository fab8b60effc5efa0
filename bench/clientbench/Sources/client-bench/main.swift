// client-bench <broker-url> <sends> <round-trips> [in-flight]
// Prints one JSON line: sends/s sequential (each send awaited before the next) and with
// `in-flight` sends outstanding, then round trips of `add(i, 1)` one after another
// (send → result through the result channel), p50/p99 in ms.
import Celeris
import Foundation

let argv = CommandLine.arguments
guard argv.count >= 4, let sends = Int(argv[2]), let trips = Int(argv[3]) else {
    FileHandle.standardError.write(Data("usage: client-bench <broker-url> <sends> <round-trips> [in-flight]\n".utf8))
    exit(2)
}
let inFlight = argv.count > 4 ? Int(argv[4]) ?? 100 : 100
let client = try CelerisClient(broker: argv[1])
let ignore = SendOptions(ignoreResult: true)

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

// Warm up: connections up, queue declared.
_ = try await client.send("add", args: [0, 0], options: ignore)

var start = ContinuousClock.now
for _ in 0..<sends { _ = try await client.send("add", args: [1, 1], options: ignore) }
let sequential = Double(sends) / seconds(ContinuousClock.now - start)

start = ContinuousClock.now
try await withThrowingTaskGroup(of: Void.self) { group in
    var next = 0
    while next < min(inFlight, sends) {
        group.addTask { _ = try await client.send("add", args: [1, 1], options: ignore) }
        next += 1
    }
    while try await group.next() != nil, next < sends {
        group.addTask { _ = try await client.send("add", args: [1, 1], options: ignore) }
        next += 1
    }
    try await group.waitForAll()
}
let concurrent = Double(sends) / seconds(ContinuousClock.now - start)

var latencies: [Double] = []
latencies.reserveCapacity(trips)
for i in 0..<trips {
    let t = ContinuousClock.now
    let sum = try await client.send("add", args: [.int(Int64(i)), 1]).get(timeout: .seconds(30))
    guard sum == .int(Int64(i + 1)) else { fatalError("add(\(i), 1) returned \(sum)") }
    latencies.append(seconds(ContinuousClock.now - t) * 1000)
}
latencies.sort()
let p50 = latencies[latencies.count / 2]
let p99 = latencies[max(0, Int(Double(latencies.count) * 0.99) - 1)]
print(
    #"{"sends_per_s": \#(sequential), "sends_per_s_in_flight": \#(concurrent), "in_flight": \#(inFlight), "#
        + #""p50_ms": \#(p50), "p99_ms": \#(p99)}"#)
await client.close()
