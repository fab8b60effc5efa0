// perf/beat_envelope.sh's measurement: ns per beat envelope, BeatMessage (message + envelope, as
// celeris-beat builds each send today) against BeatEnvelope (the per-entry template), both with
// fresh ids per message. Linked against the release FastCore objects by the script.
import FastCore
import Foundation

let rounds = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 20_000
let cases = [
    ScheduleEntry(
        name: "typical", task: "add", schedule: .interval(seconds: 1), args: [2], kwargs: [("y", 3)],
        options: .init(queue: "beatq", priority: 5, expires: 30)),
    ScheduleEntry(
        name: "no-options", task: "noop", schedule: .interval(seconds: 1), args: [7]),
    ScheduleEntry(
        name: "long-args", task: "report.build", schedule: .crontab("0 3 * * *", timezone: nil),
        args: [.string(String(repeating: "ab", count: 800)), ["k": [1, 2, 3]]],
        kwargs: [("format", "pdf"), ("recipients", ["a@x", "b@y"])]),
]

func ns(_ body: () -> Int) -> (perOp: Double, sink: Int) {
    let t0 = DispatchTime.now().uptimeNanoseconds
    let sink = body()
    return (Double(DispatchTime.now().uptimeNanoseconds - t0) / Double(rounds), sink)
}

for entry in cases {
    let sentAt = CeleryTime.now()
    for repeat_ in 1...3 {
        let old = ns {
            var s = 0
            for _ in 0..<rounds {
                let m = BeatMessage.message(for: entry, sentAt: sentAt, id: TaskMessage.newId())
                s &+= BeatMessage.envelope(of: m, for: entry).utf8.count
            }
            return s
        }
        let template = BeatEnvelope(entry: entry)
        let new = ns {
            var s = 0
            for _ in 0..<rounds { s &+= template.bytes(id: TaskMessage.newId(), sentAt: sentAt).count }
            return s
        }
        let reused = ns {
            var s = 0
            var buffer: [UInt8] = []
            for _ in 0..<rounds {
                buffer.removeAll(keepingCapacity: true)
                template.write(id: TaskMessage.newId(), sentAt: sentAt, to: &buffer)
                s &+= buffer.count
            }
            return s
        }
        let ids = ns {
            var s = 0
            for _ in 0..<rounds { s &+= TaskMessage.newId().utf8.count }
            return s
        }
        precondition(old.sink == new.sink && new.sink == reused.sink, "envelope sizes differ")
        print(
            String(
                format: "%@ run %d: BeatMessage %.0f ns, BeatEnvelope.bytes %.0f ns, write (reused buffer) %.0f ns"
                    + " per envelope (x%.1f); of which the task id's newId %.0f ns",
                entry.name, repeat_, old.perOp, new.perOp, reused.perOp, old.perOp / new.perOp, ids.perOp))
    }
}
