@testable import FastCore
import Foundation
import XCTest

/// `BeatEnvelope` writes, byte for byte, what `BeatMessage` writes (itself pinned against a real
/// `celery beat` by `BeatMessageTests`), for every entry shape and any id and send time; and what
/// it writes reads back through the worker's decoder.
final class BeatEnvelopeTests: XCTestCase {
    /// Entries of every shape: task names, args (unicode, control characters, nesting, numbers,
    /// past `argsrepr`'s limit), kwargs (unsorted, unicode, long), options set and unset, both
    /// kinds of schedule.
    func entries() -> [ScheduleEntry] {
        let tasks = ["add", "tâches.ünïcode.😀", #"odd"task\name"#]
        let argsSets: [[JSON]] = [
            [],
            [2, 3],
            ["héllo wörld ✓", "😀", "\u{0}ctl\n\t\"q\"\\ \u{1F}", "\u{7F}\u{2028}"],
            [[1, [2, [3, [4, [5, [6, [7]]]]]]], ["b": 1, "a": [nil, true, false, 1.5, -0.0, 1e300, -7]]],
            [.string(String(repeating: "x", count: 3000))],
            (0..<600).map { JSON.int(Int64($0) * 1_000_003) },
        ]
        let kwargsSets: [[(key: String, value: JSON)]] = [
            [],
            [("z", 1), ("a", 2), ("m", ["k": [1, 2], "é": nil])],
            [("ü", "é"), ("long", .string(String(repeating: "ü", count: 1500))), ("n", 2.5)],
        ]
        let options: [ScheduleEntry.SendOptions] = [
            .init(),
            .init(queue: "beatq", priority: 5, expires: 30),
            .init(queue: "q ü \"x\"", priority: 0, expires: 0),
            .init(priority: 9, expires: 0.5),
            .init(queue: "celery", expires: 1234.567891),
            .init(expires: ScheduleFile.longestSeconds),
        ]
        let schedules: [ScheduleEntry.Schedule] = [
            .interval(seconds: 1), .crontab("*/5 * * * *", timezone: "Europe/Berlin"),
        ]
        var out: [ScheduleEntry] = []
        for task in tasks {
            for (a, args) in argsSets.enumerated() {
                for (k, kwargs) in kwargsSets.enumerated() {
                    for (o, option) in options.enumerated() {
                        out.append(
                            ScheduleEntry(
                                name: "e-\(task)-\(a)-\(k)-\(o)", task: task, schedule: schedules[(a + k + o) % 2],
                                args: args, kwargs: kwargs, options: option, catchUp: o % 2 == 0 ? .once : .skip))
                    }
                }
            }
        }
        return out
    }

    /// Task ids, including ones that need JSON escapes.
    let ids = [
        "16c18fe1-c3fb-4ffd-a690-9513b30b78e0", "", "plain-id", "with \"quote\" \\ ü 😀 \n\u{1}",
    ]
    /// Send times: the epoch, now, microsecond rounding edges, negative, beyond year 9999.
    let times: [Double] = [0, 1_764_806_400.123456, 1_764_806_400.9999996, 59.5, -1.5, 1e12, 2e15]

    /// What `BeatMessage` writes for `entry` with these per-message values.
    func reference(_ entry: ScheduleEntry, origin: String, id: String, sentAt: Double, replyTo: String, tag: String)
        -> [UInt8]
    {
        var m = BeatMessage.message(for: entry, sentAt: sentAt, id: id, origin: origin)
        m.replyTo = replyTo
        m.deliveryTag = tag
        return Array(BeatMessage.envelope(of: m, for: entry).utf8)
    }

    func testBytesEqualBeatMessageForEveryEntryIdAndTime() {
        let entries = entries()
        XCTAssertEqual(entries.count, 324)
        var compared = 0
        for (n, entry) in entries.enumerated() {
            for origin in [TaskMessage.defaultOrigin, "1234@hôst"] {
                let template = BeatEnvelope(entry: entry, origin: origin)
                XCTAssertTrue(template.isCompiled, entry.name)
                // Every entry meets a few (id, time) pairs; across entries every pair is met.
                for k in 0..<4 {
                    let id = k == 0 ? TaskMessage.newId() : ids[(n + k) % ids.count]
                    let sentAt = k == 3 ? CeleryTime.now() : times[(n * 3 + k) % times.count]
                    let replyTo = TaskMessage.newId()
                    let tag = k == 2 ? "tag \"ü\"" : TaskMessage.newId()
                    let expected = reference(
                        entry, origin: origin, id: id, sentAt: sentAt, replyTo: replyTo, tag: tag)
                    let got = template.bytes(id: id, sentAt: sentAt, replyTo: replyTo, deliveryTag: tag)
                    XCTAssertEqual(
                        String(decoding: got, as: UTF8.self), String(decoding: expected, as: UTF8.self),
                        "\(entry.name) id \(id) at \(sentAt)")
                    compared += 1
                }
            }
        }
        XCTAssertEqual(compared, 324 * 2 * 4)
    }

    /// `write` appends to what the buffer holds; with fresh `reply_to`/`delivery_tag` the bytes
    /// are BeatMessage's once those two are put back.
    func testWriteAppendsAndFreshIdsAreTheOnlyDifference() throws {
        let entry = ScheduleEntry(
            name: "every-second", task: "add", schedule: .interval(seconds: 1), args: [2, "ü"], kwargs: [("y", 3)],
            options: .init(queue: "beatq", priority: 5, expires: 30))
        let template = BeatEnvelope(entry: entry)
        var buffer = Array("prefix".utf8)
        let sentAt = CeleryTime.now()
        let id = TaskMessage.newId()
        template.write(id: id, sentAt: sentAt, to: &buffer)
        XCTAssertEqual(Array(buffer.prefix(6)), Array("prefix".utf8))
        let written = Array(buffer.dropFirst(6))
        let again = template.bytes(id: id, sentAt: sentAt)
        let first = try TaskMessage.decode(written, queue: "beatq")
        let second = try TaskMessage.decode(again, queue: "beatq")
        XCTAssertNotEqual(first.replyTo, second.replyTo, "a fresh reply_to per message")
        XCTAssertNotEqual(first.deliveryTag, second.deliveryTag, "a fresh delivery_tag per message")
        XCTAssertEqual(first.replyTo.count, 36)
        XCTAssertEqual(first.deliveryTag.count, 36)
        for (raw, m) in [(written, first), (again, second)] {
            XCTAssertEqual(
                raw,
                reference(
                    entry, origin: TaskMessage.defaultOrigin, id: id, sentAt: sentAt, replyTo: m.replyTo,
                    tag: m.deliveryTag))
        }
    }

    /// The worker's decoder reads the template's envelopes: task, ids, args, kwargs, headers, properties.
    func testWorkerDecodesTemplateOutput() throws {
        for (n, entry) in entries().enumerated() where n % 7 == 0 {
            let template = BeatEnvelope(entry: entry, origin: "42@host")
            let id = TaskMessage.newId()
            let sentAt = times[n % times.count]
            let queue = entry.options.queue ?? "celery"
            let raw = template.bytes(id: id, sentAt: sentAt, replyTo: "r-\(n)", deliveryTag: "t-\(n)")
            let m = try TaskMessage.decode(raw, queue: queue)
            XCTAssertEqual(m.task, entry.task, entry.name)
            XCTAssertEqual(m.id, id)
            XCTAssertEqual(m.rootId, id)
            XCTAssertNil(m.parentId)
            XCTAssertEqual(m.args, entry.args, entry.name)
            XCTAssertEqual(m.kwargs.map(\.key), entry.kwargs.map(\.key), entry.name)
            XCTAssertEqual(m.kwargs.map(\.value), entry.kwargs.map(\.value), entry.name)
            XCTAssertEqual(m.embed, TaskMessage.noEmbed)
            XCTAssertEqual(m.replyTo, "r-\(n)")
            XCTAssertEqual(m.deliveryTag, "t-\(n)")
            XCTAssertEqual(m.priority, entry.options.priority ?? 0, entry.name)
            XCTAssertEqual(m.routingKey, queue)
            XCTAssertEqual(m.origin, "42@host")
            XCTAssertEqual(m.expires, entry.options.expires.map { CeleryTime.isoformat(sentAt + $0) }, entry.name)
            XCTAssertEqual(m.headers["celery_beat_task"], true)
            XCTAssertEqual(m.headers["ignore_result"], .null)
            XCTAssertEqual(m.headers["id"], .string(id))
            XCTAssertEqual(
                m.headers["argsrepr"], .string(PythonRepr.saferepr(.array(entry.args), limit: PythonRepr.argsMaxLength))
            )

            let envelope = try JSONParser.parse(raw)
            XCTAssertEqual(envelope["properties"]?["correlation_id"], .string(id))
            XCTAssertEqual(
                envelope["properties"]?["expiration"],
                entry.options.expires.map { .string(BeatMessage.expiration(seconds: $0)) })
            let (headers, body) = try XCTUnwrap(KombuEnvelope.read(raw))
            XCTAssertEqual(headers["task"], .string(entry.task))
            XCTAssertEqual(body[0], .array(entry.args))
        }
    }

    /// A new template for a changed entry writes the changed entry.
    func testTemplateFollowsItsEntry() {
        var entry = ScheduleEntry(name: "e", task: "add", schedule: .interval(seconds: 1), args: [1])
        let before = BeatEnvelope(entry: entry)
        entry.args = [2]
        entry.options.expires = 10
        let after = BeatEnvelope(entry: entry)
        XCTAssertEqual(after.entry, entry)
        XCTAssertNotEqual(before.entry, entry)
        let expected = reference(entry, origin: TaskMessage.defaultOrigin, id: "i", sentAt: 5, replyTo: "r", tag: "t")
        XCTAssertEqual(after.bytes(id: "i", sentAt: 5, replyTo: "r", deliveryTag: "t"), expected)
        XCTAssertNotEqual(before.bytes(id: "i", sentAt: 5, replyTo: "r", deliveryTag: "t"), expected)
    }

    /// Prints ns per envelope, BeatMessage vs BeatEnvelope (fresh ids per message in both, as a
    /// scheduler sends), for a typical entry and one with long args. Timing is printed, not asserted;
    /// the last envelopes of both are checked equal. `BEAT_ENVELOPE_ROUNDS` sets the messages per case.
    func testPrintsNanosecondsPerEnvelope() throws {
        let rounds = Int(ProcessInfo.processInfo.environment["BEAT_ENVELOPE_ROUNDS"] ?? "") ?? 5000
        let cases = [
            ScheduleEntry(
                name: "typical", task: "add", schedule: .interval(seconds: 1), args: [2],
                kwargs: [("y", 3)], options: .init(queue: "beatq", priority: 5, expires: 30)),
            ScheduleEntry(
                name: "long-args", task: "report.build", schedule: .crontab("0 3 * * *", timezone: nil),
                args: [.string(String(repeating: "ab", count: 800)), ["k": [1, 2, 3]]],
                kwargs: [("format", "pdf"), ("recipients", ["a@x", "b@y"])]),
        ]
        #if DEBUG
            let build = "debug"
        #else
            let build = "release"
        #endif
        for entry in cases {
            let sentAt = CeleryTime.now()
            var sink = 0
            var lastReference: [UInt8] = []
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<rounds {
                let m = BeatMessage.message(for: entry, sentAt: sentAt, id: TaskMessage.newId())
                lastReference = Array(BeatMessage.envelope(of: m, for: entry).utf8)
                sink &+= lastReference.count
            }
            let t1 = DispatchTime.now().uptimeNanoseconds
            let template = BeatEnvelope(entry: entry)
            var lastTemplate: [UInt8] = []
            let t2 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<rounds {
                lastTemplate = template.bytes(id: TaskMessage.newId(), sentAt: sentAt)
                sink &+= lastTemplate.count
            }
            let t3 = DispatchTime.now().uptimeNanoseconds
            var buffer: [UInt8] = []
            for _ in 0..<rounds {
                buffer.removeAll(keepingCapacity: true)
                template.write(id: TaskMessage.newId(), sentAt: sentAt, to: &buffer)
                sink &+= buffer.count
            }
            let t4 = DispatchTime.now().uptimeNanoseconds
            let made = BeatEnvelope(entry: entry)
            let t5 = DispatchTime.now().uptimeNanoseconds
            print(
                "beat-envelope (\(build)) \(entry.name): BeatMessage \((t1 - t0) / UInt64(rounds)) ns, "
                    + "BeatEnvelope.bytes \((t3 - t2) / UInt64(rounds)) ns, "
                    + "write into a reused buffer \((t4 - t3) / UInt64(rounds)) ns per envelope; "
                    + "template made in \(t5 - t4) ns (\(lastTemplate.count) bytes, sink \(sink))")
            XCTAssertTrue(made.isCompiled)
            // The last two envelopes differ only in their ids: put the template's in the reference.
            let m = try TaskMessage.decode(lastTemplate, queue: entry.options.queue ?? "celery")
            XCTAssertEqual(
                lastTemplate,
                reference(
                    entry, origin: TaskMessage.defaultOrigin, id: m.id, sentAt: sentAt, replyTo: m.replyTo,
                    tag: m.deliveryTag))
            XCTAssertEqual(lastReference.count, lastTemplate.count)
        }
    }
}
