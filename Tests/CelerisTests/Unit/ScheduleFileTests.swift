import FastCore
import Foundation
import XCTest

/// `ScheduleFile`: the JSON schedule read as Python Celery reads its `beat_schedule`, and a clear
/// error (never a trap) for every malformed part.
final class ScheduleFileTests: XCTestCase {
    let sample = #"""
        {"timezone": "Europe/Berlin", "beat_schedule": {
          "add": {"task": "add", "schedule": 2.5, "args": [1, "x", null], "kwargs": {"y": 2, "z": [1]},
                  "options": {"queue": "q", "priority": 3, "expires": 10}, "catch_up": "skip"},
          "weekdays": {"task": "report", "schedule": {"crontab": {"minute": "*/5", "hour": 3, "day_of_week": "mon-fri"},
                       "timezone": "America/New_York"}, "catch_up": "once"},
          "new-year": {"task": "t", "schedule": {"crontab": "0 0 1 1 *"}},
          "plain": {"task": "t", "schedule": 60, "args": null, "kwargs": null, "options": null}}}
        """#

    /// Every entry as Celery 5.7's `ScheduleEntry` and `crontab` read the same file.
    func testEntriesAsCeleryReadsThem() throws {
        let file = try ScheduleFile.parse(sample)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("schedule-\(UUID().uuidString).json")
        try sample.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        XCTAssertEqual(try ScheduleFile.load(path: url.path), file)
        let celery = try XCTUnwrap(try resultLine(runPython("schedule_probe.py", [url.path])).arrayValue)
        XCTAssertEqual(file.entries.count, celery.count)
        for (ours, theirs) in zip(file.entries, celery) {
            XCTAssertEqual(.string(ours.name), theirs["name"])
            XCTAssertEqual(.string(ours.task), theirs["task"], ours.name)
            switch ours.schedule {
            case .interval(let seconds):
                XCTAssertEqual(.double(seconds), theirs["schedule"]?["interval"], ours.name)
            case .crontab(let fields, let zone):
                XCTAssertEqual(.string(fields), theirs["schedule"]?["crontab"], ours.name)
                XCTAssertEqual(zone.map(JSON.string) ?? .null, theirs["schedule"]?["timezone"], ours.name)
            }
            XCTAssertEqual(.array(ours.args), theirs["args"], ours.name)
            XCTAssertEqual(.object(ours.kwargs), theirs["kwargs"], ours.name)
            var options: [(key: String, value: JSON)] = []
            if let q = ours.options.queue { options.append((key: "queue", value: .string(q))) }
            if let p = ours.options.priority { options.append((key: "priority", value: .int(Int64(p)))) }
            if let e = ours.options.expires { options.append((key: "expires", value: .double(e))) }
            XCTAssertEqual(.object(options), theirs["options"], ours.name)
        }
        XCTAssertEqual(file.entries.map(\.catchUp), [.skip, .once, .once, .once])
    }

    /// Each malformed part is refused with its place named.
    func testEveryMalformedPartIsAClearError() {
        let cases: [(text: String, path: String)] = [
            ("", ""),
            ("[]", ""),
            ("{}", ""),
            (#"{"beat_schedule": [], "x": 1}"#, "x"),
            (#"{"beat_schedule": []}"#, "beat_schedule"),
            (#"{"timezone": "Mars/Olympus", "beat_schedule": {}}"#, "timezone"),
            (#"{"timezone": 3, "beat_schedule": {}}"#, "timezone"),
            (#"{"beat_schedule": {"": {"task": "t", "schedule": 1}}}"#, "beat_schedule."),
            (
                #"{"beat_schedule": {"a": {"task": "t", "schedule": 1}, "a": {"task": "t", "schedule": 1}}}"#,
                "beat_schedule.a"
            ),
            (#"{"beat_schedule": {"a": 1}}"#, "beat_schedule.a"),
            (#"{"beat_schedule": {"a": {"schedule": 1}}}"#, "beat_schedule.a.task"),
            (#"{"beat_schedule": {"a": {"task": "", "schedule": 1}}}"#, "beat_schedule.a.task"),
            (#"{"beat_schedule": {"a": {"task": 1, "schedule": 1}}}"#, "beat_schedule.a.task"),
            (#"{"beat_schedule": {"a": {"task": "t"}}}"#, "beat_schedule.a.schedule"),
            (#"{"beat_schedule": {"a": {"task": "t", "schedule": 0}}}"#, "beat_schedule.a.schedule"),
            (#"{"beat_schedule": {"a": {"task": "t", "schedule": -1}}}"#, "beat_schedule.a.schedule"),
            (#"{"beat_schedule": {"a": {"task": "t", "schedule": 1e300}}}"#, "beat_schedule.a.schedule"),
            (#"{"beat_schedule": {"a": {"task": "t", "schedule": "10"}}}"#, "beat_schedule.a.schedule"),
            (#"{"beat_schedule": {"a": {"task": "t", "schedule": {}}}}"#, "beat_schedule.a.schedule"),
            (
                #"{"beat_schedule": {"a": {"task": "t", "schedule": {"cron": "* * * * *"}}}}"#,
                "beat_schedule.a.schedule.cron"
            ),
            (
                #"{"beat_schedule": {"a": {"task": "t", "schedule": {"crontab": "* * *"}}}}"#,
                "beat_schedule.a.schedule.crontab"
            ),
            (
                #"{"beat_schedule": {"a": {"task": "t", "schedule": {"crontab": 5}}}}"#,
                "beat_schedule.a.schedule.crontab"
            ),
            (
                #"{"beat_schedule": {"a": {"task": "t", "schedule": {"crontab": {"second": "1"}}}}}"#,
                "beat_schedule.a.schedule.crontab.second"
            ),
            (
                #"{"beat_schedule": {"a": {"task": "t", "schedule": {"crontab": {"minute": ""}}}}}"#,
                "beat_schedule.a.schedule.crontab.minute"
            ),
            (
                #"{"beat_schedule": {"a": {"task": "t", "schedule": {"crontab": {"hour": "1;2"}}}}}"#,
                "beat_schedule.a.schedule.crontab.hour"
            ),
            (
                #"{"beat_schedule": {"a": {"task": "t", "schedule": {"crontab": {"hour": -1}}}}}"#,
                "beat_schedule.a.schedule.crontab.hour"
            ),
            (
                #"{"beat_schedule": {"a": {"task": "t", "schedule": {"crontab": {"hour": 1.5}}}}}"#,
                "beat_schedule.a.schedule.crontab.hour"
            ),
            (
                #"{"beat_schedule": {"a": {"task": "t", "schedule": {"crontab": "* * * * x;"}}}}"#,
                "beat_schedule.a.schedule.crontab.day_of_week"
            ),
            (
                #"{"beat_schedule": {"a": {"task": "t", "schedule": {"crontab": "* * * * *", "timezone": "Nowhere"}}}}"#,
                "beat_schedule.a.schedule.timezone"
            ),
            (#"{"beat_schedule": {"a": {"task": "t", "schedule": 1, "args": {}}}}"#, "beat_schedule.a.args"),
            (#"{"beat_schedule": {"a": {"task": "t", "schedule": 1, "kwargs": []}}}"#, "beat_schedule.a.kwargs"),
            (
                #"{"beat_schedule": {"a": {"task": "t", "schedule": 1, "kwargs": {"x": 1, "x": 2}}}}"#,
                "beat_schedule.a.kwargs.x"
            ),
            (#"{"beat_schedule": {"a": {"task": "t", "schedule": 1, "options": []}}}"#, "beat_schedule.a.options"),
            (
                #"{"beat_schedule": {"a": {"task": "t", "schedule": 1, "options": {"countdown": 1}}}}"#,
                "beat_schedule.a.options.countdown"
            ),
            (
                #"{"beat_schedule": {"a": {"task": "t", "schedule": 1, "options": {"queue": ""}}}}"#,
                "beat_schedule.a.options.queue"
            ),
            (
                #"{"beat_schedule": {"a": {"task": "t", "schedule": 1, "options": {"queue": 1}}}}"#,
                "beat_schedule.a.options.queue"
            ),
            (
                #"{"beat_schedule": {"a": {"task": "t", "schedule": 1, "options": {"priority": 10}}}}"#,
                "beat_schedule.a.options.priority"
            ),
            (
                #"{"beat_schedule": {"a": {"task": "t", "schedule": 1, "options": {"priority": 1.5}}}}"#,
                "beat_schedule.a.options.priority"
            ),
            (
                #"{"beat_schedule": {"a": {"task": "t", "schedule": 1, "options": {"expires": -1}}}}"#,
                "beat_schedule.a.options.expires"
            ),
            (
                #"{"beat_schedule": {"a": {"task": "t", "schedule": 1, "options": {"expires": "soon"}}}}"#,
                "beat_schedule.a.options.expires"
            ),
            (#"{"beat_schedule": {"a": {"task": "t", "schedule": 1, "catch_up": "all"}}}"#, "beat_schedule.a.catch_up"),
            (#"{"beat_schedule": {"a": {"task": "t", "schedule": 1, "catch_up": true}}}"#, "beat_schedule.a.catch_up"),
            (#"{"beat_schedule": {"a": {"task": "t", "schedule": 1, "relative": true}}}"#, "beat_schedule.a.relative"),
        ]
        for (text, path) in cases {
            XCTAssertThrowsError(try ScheduleFile.parse(text), text) { error in
                guard let e = error as? ScheduleFileError else { return XCTFail("\(error) for \(text)") }
                XCTAssertEqual(e.path, path, "\(text): \(e)")
                XCTAssertFalse(e.message.isEmpty, text)
            }
        }
    }

    func testLoadRefusesMissingAndOversizedFiles() throws {
        XCTAssertThrowsError(try ScheduleFile.load(path: "/nonexistent/schedule.json")) {
            XCTAssertTrue(String(describing: $0).contains("cannot open"), "\($0)")
        }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("big-\(UUID().uuidString).json")
        try Data(count: ScheduleFile.largestFile + 1).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        XCTAssertThrowsError(try ScheduleFile.load(path: url.path)) {
            XCTAssertTrue(String(describing: $0).contains("larger than"), "\($0)")
        }
    }

    /// Mutated and truncated versions of the sample parse or throw `ScheduleFileError`; none traps.
    func testMutatedFilesNeverTrap() {
        var rng = SplitMix(seed: 22)
        let base = Array(sample.utf8)
        let alphabet = Array(#"{}[]",:0123456789.-e*/ abcnultrf"#.utf8)
        var parsed = 0
        for _ in 0..<20_000 {
            var bytes = base
            for _ in 0...Int(rng.next() % 4) {
                let i = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 3 {
                case 0: bytes[i] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                case 1: bytes.remove(at: i)
                default: bytes.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: i)
                }
            }
            if rng.next() % 8 == 0 { bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count + 1)))) }
            do {
                _ = try ScheduleFile.parse(bytes)
                parsed += 1
            } catch {
                XCTAssertFalse(error.description.isEmpty)
            }
        }
        print("ScheduleFileTests: \(parsed) of 20000 mutated files still parsed")
    }
}
