import FastCore
import Foundation
import XCTest

/// `ScheduleEntry.jsonObject()` spells an entry as a schedule file does, and
/// `ScheduleFile.parseEntry` reads it (or any entry object) back: the same entry, every shape.
final class ScheduleEntryJSONTests: XCTestCase {
    /// One entry of every schedule shape and option combination.
    let shapes: [ScheduleEntry] = [
        ScheduleEntry(name: "whole", task: "add", schedule: .interval(seconds: 10)),
        ScheduleEntry(name: "half", task: "add", schedule: .interval(seconds: 2.5)),
        ScheduleEntry(name: "tenth", task: "add", schedule: .interval(seconds: 0.1)),
        ScheduleEntry(name: "milli", task: "add", schedule: .interval(seconds: 0.001)),
        ScheduleEntry(name: "longest", task: "add", schedule: .interval(seconds: ScheduleFile.longestSeconds)),
        ScheduleEntry(name: "odd", task: "add", schedule: .interval(seconds: 1.0 / 3.0)),
        ScheduleEntry(name: "cron-utc", task: "report", schedule: .crontab("*/5 * * * *", timezone: nil)),
        ScheduleEntry(
            name: "cron-zone", task: "report", schedule: .crontab("0 3 1-7 */2 mon-fri", timezone: "Europe/Berlin")),
        ScheduleEntry(
            name: "args", task: "t.a.b", schedule: .interval(seconds: 1),
            args: [1, -2, 3.25, "x", "üñí \"q\" \\ \n", nil, true, [1, [2, ["deep": [3]]]], ["k": "v", "a": 1]]),
        ScheduleEntry(
            name: "kwargs-order", task: "t", schedule: .interval(seconds: 1),
            kwargs: [(key: "z", value: 1), (key: "a", value: ["n": nil]), (key: "m", value: "s")]),
        ScheduleEntry(
            name: "queue", task: "t", schedule: .interval(seconds: 1), options: .init(queue: "math")),
        ScheduleEntry(
            name: "priority", task: "t", schedule: .interval(seconds: 1), options: .init(priority: 0)),
        ScheduleEntry(
            name: "expires-whole", task: "t", schedule: .interval(seconds: 1), options: .init(expires: 30)),
        ScheduleEntry(
            name: "expires-fraction", task: "t", schedule: .interval(seconds: 1), options: .init(expires: 0.5)),
        ScheduleEntry(
            name: "everything", task: "report", schedule: .crontab("0 0 1 1 *", timezone: "America/New_York"),
            args: [2, 3], kwargs: [(key: "y", value: 2), (key: "b", value: [1])],
            options: .init(queue: "q", priority: 9, expires: 12.75), catchUp: .skip),
        ScheduleEntry(name: "skip", task: "t", schedule: .interval(seconds: 60), catchUp: .skip),
    ]

    /// Every shape comes back equal from the JSON value and from its text, and its text is stable
    /// (the parsed entry spells itself the same way: the normal form the frontend stores).
    func testEveryShapeRoundTrips() throws {
        for entry in shapes {
            let json = entry.jsonObject()
            XCTAssertEqual(try ScheduleFile.parseEntry(name: entry.name, json: json), entry, entry.name)
            let text = json.serialized()
            let back = try ScheduleFile.parseEntry(name: entry.name, text: text)
            XCTAssertEqual(back, entry, text)
            XCTAssertEqual(back.jsonObject().serialized(), text, entry.name)
            XCTAssertEqual(try ScheduleFile.parseEntry(name: entry.name, bytes: Array(text.utf8)), entry, entry.name)
        }
    }

    /// The text is what a schedule file would hold: keys in the file's order, whole seconds as
    /// integers, a crontab as its one-line string with `timezone` only when set, only the options set.
    func testSpelledAsAScheduleFileSpellsIt() {
        let entry = ScheduleEntry(
            name: "add-every-10s", task: "add", schedule: .interval(seconds: 10), args: [2, 3],
            kwargs: [(key: "z", value: 1), (key: "a", value: 2)],
            options: .init(queue: "math", priority: 5, expires: 30), catchUp: .skip)
        XCTAssertEqual(
            entry.jsonObject().serialized(),
            #"{"task": "add", "schedule": 10, "args": [2, 3], "kwargs": {"z": 1, "a": 2}, "#
                + #""options": {"queue": "math", "priority": 5, "expires": 30}, "catch_up": "skip"}"#)
        XCTAssertEqual(
            ScheduleEntry(name: "n", task: "report", schedule: .crontab("0 3 * * *", timezone: "Europe/Berlin"))
                .jsonObject().serialized(),
            #"{"task": "report", "schedule": {"crontab": "0 3 * * *", "timezone": "Europe/Berlin"}, "#
                + #""args": [], "kwargs": {}, "options": {}, "catch_up": "once"}"#)
        XCTAssertEqual(
            ScheduleEntry(
                name: "n", task: "t", schedule: .crontab("* * * * *", timezone: nil), options: .init(expires: 1.5)
            )
            .jsonObject().serialized(),
            #"{"task": "t", "schedule": {"crontab": "* * * * *"}, "args": [], "kwargs": {}, "#
                + #""options": {"expires": 1.5}, "catch_up": "once"}"#)
        XCTAssertEqual(
            ScheduleEntry(name: "n", task: "t", schedule: .interval(seconds: 2.5)).jsonObject()["schedule"],
            .double(2.5))
    }

    /// Entries read from a schedule file (crontab objects, integer fields, nulls) come back equal
    /// through their `jsonObject()`, and a file made of those objects parses to the same entries.
    func testEntriesOfAFileRoundTrip() throws {
        let file = try ScheduleFile.parse(
            #"""
            {"timezone": "Asia/Tokyo", "beat_schedule": {
              "a": {"task": "add", "schedule": 2.5, "args": [1, "x", null], "kwargs": {"y": 2, "b": [1]},
                    "options": {"queue": "q", "priority": 3, "expires": 10}, "catch_up": "skip"},
              "b": {"task": "report", "schedule": {"crontab": {"minute": "*/5", "hour": 3, "day_of_week": "mon-fri"},
                    "timezone": "America/New_York"}},
              "c": {"task": "t", "schedule": {"crontab": "0 0 1 1 *"}},
              "d": {"task": "t", "schedule": 60, "args": null, "kwargs": null, "options": null}}}
            """#)
        XCTAssertEqual(file.entries.count, 4)
        XCTAssertEqual(file.entries[1].schedule, .crontab("*/5 3 * * mon-fri", timezone: "America/New_York"))
        XCTAssertEqual(file.entries[2].schedule, .crontab("0 0 1 1 *", timezone: "Asia/Tokyo"))
        for entry in file.entries {
            XCTAssertEqual(try ScheduleFile.parseEntry(name: entry.name, json: entry.jsonObject()), entry, entry.name)
        }
        let rebuilt: JSON = [
            "beat_schedule": .object(file.entries.map { (key: $0.name, value: $0.jsonObject()) })
        ]
        XCTAssertEqual(try ScheduleFile.parse(rebuilt.serialized()), file)
    }

    /// `defaultZone` is the zone of a crontab without its own, and only of those.
    func testDefaultZoneAppliesToCrontabsWithoutTheirOwn() throws {
        let own = try ScheduleFile.parseEntry(
            name: "o", text: #"{"task": "t", "schedule": {"crontab": "0 3 * * *", "timezone": "Europe/Paris"}}"#,
            defaultZone: "Asia/Tokyo")
        XCTAssertEqual(own.schedule, .crontab("0 3 * * *", timezone: "Europe/Paris"))
        let without = try ScheduleFile.parseEntry(
            name: "w", json: ["task": "t", "schedule": ["crontab": ["hour": 3, "minute": 0]]], defaultZone: "Asia/Tokyo"
        )
        XCTAssertEqual(without.schedule, .crontab("0 3 * * *", timezone: "Asia/Tokyo"))
        let none = try ScheduleFile.parseEntry(name: "n", json: ["task": "t", "schedule": ["crontab": "0 3 * * *"]])
        XCTAssertEqual(none.schedule, .crontab("0 3 * * *", timezone: nil))
        let interval = try ScheduleFile.parseEntry(
            name: "i", json: ["task": "t", "schedule": 5], defaultZone: "Asia/Tokyo")
        XCTAssertEqual(interval.schedule, .interval(seconds: 5))
    }

    /// Each malformed entry is refused with its place inside the entry named, never a trap.
    func testMalformedEntriesAreClearErrors() {
        let cases: [(name: String, text: String, path: String, says: String)] = [
            ("n", "", "", "not JSON"),
            ("n", #"{"task": "t", "schedule": 1"#, "", "not JSON"),
            ("n", #"{"task": "t", "schedule": 1} x"#, "", "not JSON"),
            ("n", "[]", "", "must be an entry object, not a list"),
            ("n", "null", "", "must be an entry object, not null"),
            ("n", #"{"schedule": 1}"#, "task", "non-empty string"),
            ("n", #"{"task": "", "schedule": 1}"#, "task", "non-empty string"),
            ("n", #"{"task": "t"}"#, "schedule", "missing"),
            ("n", #"{"task": "t", "schedule": 0}"#, "schedule", "more than 0"),
            ("n", #"{"task": "t", "schedule": -1}"#, "schedule", "more than 0"),
            ("n", #"{"task": "t", "schedule": "5"}"#, "schedule", "not a string"),
            ("n", #"{"task": "t", "schedule": {"crontab": "* * *"}}"#, "schedule.crontab", "5 fields"),
            (
                "n", #"{"task": "t", "schedule": {"crontab": "* * * * *", "timezone": "X/Y"}}"#, "schedule.timezone",
                "unknown time zone"
            ),
            ("n", #"{"task": "t", "schedule": 1, "args": {}}"#, "args", "must be a list"),
            ("n", #"{"task": "t", "schedule": 1, "kwargs": [1]}"#, "kwargs", "must be an object"),
            ("n", #"{"task": "t", "schedule": 1, "kwargs": {"a": 1, "a": 2}}"#, "kwargs.a", "twice"),
            ("n", #"{"task": "t", "schedule": 1, "options": {"priority": 10}}"#, "options.priority", "0...9"),
            ("n", #"{"task": "t", "schedule": 1, "options": {"queue": ""}}"#, "options.queue", "non-empty"),
            ("n", #"{"task": "t", "schedule": 1, "options": {"expires": -1}}"#, "options.expires", "seconds"),
            ("n", #"{"task": "t", "schedule": 1, "options": {"retry": true}}"#, "options.retry", "unknown key"),
            ("n", #"{"task": "t", "schedule": 1, "catch_up": "all"}"#, "catch_up", "\"skip\" or \"once\""),
            ("n", #"{"task": "t", "schedule": 1, "name": "x"}"#, "name", "unknown key"),
            ("n", #"{"task": "t", "task": "u", "schedule": 1}"#, "task", "twice"),
            ("", #"{"task": "t", "schedule": 1}"#, "", "name is empty"),
            ("n", String(repeating: "[", count: 100_000), "", "bytes"),
            ("n", String(repeating: "[", count: 10_000), "", "not JSON"),
        ]
        for c in cases {
            do {
                let entry = try ScheduleFile.parseEntry(name: c.name, text: c.text)
                XCTFail("\(c.text.prefix(80)) parsed as \(entry)")
            } catch {
                XCTAssertEqual(error.path, c.path, "\(c.text.prefix(80)): \(error)")
                XCTAssertTrue(error.message.contains(c.says), "\(c.text.prefix(80)): \(error)")
                XCTAssertEqual(
                    error.description, c.path.isEmpty ? error.message : "\(c.path): \(error.message)")
            }
        }
    }

    /// The size cap is 64 KiB of text: an entry of exactly that many bytes is read, one more is not.
    func testEntriesUpTo64KiB() throws {
        let head = #"{"task": "t", "schedule": 1, "args": [""#
        let tail = #""]}"#
        let fill = ScheduleFile.largestEntry - head.utf8.count - tail.utf8.count
        let exact = head + String(repeating: "a", count: fill) + tail
        XCTAssertEqual(exact.utf8.count, 65536)
        let entry = try ScheduleFile.parseEntry(name: "big", text: exact)
        XCTAssertEqual(entry.args.first?.stringValue?.utf8.count, fill)
        let over = head + String(repeating: "a", count: fill + 1) + tail
        XCTAssertThrowsError(try ScheduleFile.parseEntry(name: "big", text: over)) { error in
            XCTAssertEqual(
                (error as? ScheduleFileError)?.message, "an entry is 65537 bytes, more than the 65536 allowed")
        }
    }
}
