import FastCore
import Foundation
import XCTest

/// `ScheduleSource` over a real schedule file in a temporary directory and a real redis-server:
/// changes seen only at the reload interval of a manual clock, a broken or vanished file keeps
/// its entries and says why, dynamic entries follow `celeris:beat:dynamic:version`.
final class ScheduleSourceTests: RedisTestCase {
    var directory: URL!
    var path: String { directory.appendingPathComponent("schedule.json").path }
    let clock = ManualClock()

    override func setUpWithError() throws {
        try super.setUpWithError()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("schedule-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: directory)
        super.tearDown()
    }

    /// Write the schedule file in place (same inode), as `echo > file` does.
    func write(_ text: String) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    /// A file of `entries` (name → entry object text) with an optional top-level zone.
    func file(_ entries: [(String, String)], timezone: String? = nil) -> String {
        let body = entries.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ")
        return "{" + (timezone.map { "\"timezone\": \"\($0)\", " } ?? "") + "\"beat_schedule\": {\(body)}}"
    }

    /// Store a run-time entry as the frontend does: HSET then INCR the version.
    func putDynamic(_ name: String, _ text: String) throws {
        XCTAssertEqual(try client.command("HSET", ScheduleSource.dynamicKey, name, text).errorMessage, nil)
        XCTAssertEqual(try client.command("INCR", ScheduleSource.dynamicVersionKey).errorMessage, nil)
    }

    func source(file: String?, readsRedis: Bool = true) -> ScheduleSource {
        ScheduleSource(file: file, readsRedis: readsRedis, clock: clock, reloadInterval: 1.0)
    }

    /// The next check: one reload interval later.
    func reload(_ source: ScheduleSource) -> ScheduleSource.Snapshot? {
        clock.advance(1.0)
        return source.reloadIfChanged(redis: client, now: clock.now())
    }

    /// The file's entries in order, the dynamic ones by name, the file's zone as the default of both.
    func testFirstLoadReadsTheFileAndTheDynamicEntries() throws {
        try write(
            file(
                [
                    ("tick", #"{"task": "add", "schedule": 5, "args": [1, 2]}"#),
                    ("nightly", #"{"task": "report", "schedule": {"crontab": "0 3 * * *"}}"#),
                ],
                timezone: "Europe/Berlin"))
        try putDynamic("zz-dyn", #"{"task": "dyn", "schedule": {"crontab": "*/5 * * * *"}, "catch_up": "skip"}"#)
        try putDynamic("aa-dyn", #"{"task": "dyn2", "schedule": 0.5}"#)
        let snapshot = try source(file: path).load(redis: client)
        XCTAssertEqual(
            snapshot.entries,
            [
                ScheduleEntry(name: "tick", task: "add", schedule: .interval(seconds: 5), args: [1, 2]),
                ScheduleEntry(
                    name: "nightly", task: "report", schedule: .crontab("0 3 * * *", timezone: "Europe/Berlin")),
                ScheduleEntry(name: "aa-dyn", task: "dyn2", schedule: .interval(seconds: 0.5)),
                ScheduleEntry(
                    name: "zz-dyn", task: "dyn", schedule: .crontab("*/5 * * * *", timezone: "Europe/Berlin"),
                    catchUp: .skip),
            ])
        XCTAssertEqual(snapshot.sources, ["tick": "file", "nightly": "file", "aa-dyn": "redis", "zz-dyn": "redis"])
        XCTAssertEqual(snapshot.timezone, "Europe/Berlin")
        XCTAssertEqual(snapshot.errors, [])
    }

    /// No file: the dynamic entries alone; `readsRedis: false`: the file alone.
    func testEachSourceAlone() throws {
        try write(file([("tick", #"{"task": "add", "schedule": 5}"#)]))
        try putDynamic("dyn", #"{"task": "dyn", "schedule": 1}"#)
        let redisOnly = try source(file: nil).load(redis: client)
        XCTAssertEqual(redisOnly.entries.map(\.name), ["dyn"])
        XCTAssertNil(redisOnly.timezone)
        let fileOnly = source(file: path, readsRedis: false)
        XCTAssertEqual(try fileOnly.load(redis: client).entries.map(\.name), ["tick"])
        try putDynamic("dyn2", #"{"task": "dyn", "schedule": 1}"#)
        XCTAssertNil(reload(fileOnly))
    }

    /// At start, a file that does not parse, or is not there, is an error (the engine exits on it).
    func testFirstLoadThrowsOnABadOrMissingFile() throws {
        try write(#"{"beat_schedule": {"x": {"task": "t", "schedule": 1, "every": 2}}}"#)
        XCTAssertThrowsError(try source(file: path).load(redis: client)) { error in
            XCTAssertEqual((error as? ScheduleFileError)?.path, "beat_schedule.x.every")
        }
        try write(#"{"beat_schedule": {"#)
        XCTAssertThrowsError(try source(file: path).load(redis: client)) { error in
            XCTAssertEqual((error as? ScheduleFileError)?.message.hasPrefix("not JSON"), true, "\(error)")
        }
        let missing = directory.appendingPathComponent("nope.json").path
        XCTAssertThrowsError(try source(file: missing).load(redis: client)) { error in
            XCTAssertEqual(
                (error as? ScheduleFileError)?.message, "cannot stat \(missing): No such file or directory")
        }
    }

    /// An edit is seen at the first check one reload interval after the last, not before; then
    /// nothing until the next change. Both an in-place edit of the same size (same inode, maybe the
    /// same mtime) and a replace by rename are seen.
    func testAnEditIsSeenAfterTheReloadIntervalNotBefore() throws {
        try write(file([("tick", #"{"task": "add", "schedule": 5}"#)]))
        let source = source(file: path)
        XCTAssertEqual(try source.load(redis: client).entries.map(\.task), ["add"])
        var before = stat()
        XCTAssertEqual(stat(path, &before), 0)
        try write(file([("tick", #"{"task": "mul", "schedule": 5}"#)]))  // same size, in place
        // The same mtime too, as on a file system with coarse timestamps: only the bytes differ.
        var times = [timespec(tv_sec: before.st_atim.tv_sec, tv_nsec: before.st_atim.tv_nsec), before.st_mtim]
        XCTAssertEqual(utimensat(AT_FDCWD, path, &times, 0), 0)
        var after = stat()
        XCTAssertEqual(stat(path, &after), 0)
        XCTAssertEqual(
            [after.st_size, Int(after.st_ino), after.st_mtim.tv_sec, after.st_mtim.tv_nsec],
            [before.st_size, Int(before.st_ino), before.st_mtim.tv_sec, before.st_mtim.tv_nsec])
        // Only the byte recheck sees this edit, and ScheduleSource does it only while the file's
        // mtime is within 2 s of the system's real clock (not the ManualClock): the check below
        // must come within 2 s of the write (it comes within milliseconds).
        clock.advance(0.5)
        XCTAssertNil(source.reloadIfChanged(redis: client, now: clock.now()))
        clock.advance(0.49)
        XCTAssertNil(source.reloadIfChanged(redis: client, now: clock.now()))
        clock.advance(0.01)
        let edited = try XCTUnwrap(source.reloadIfChanged(redis: client, now: clock.now()))
        XCTAssertEqual(edited.entries, [ScheduleEntry(name: "tick", task: "mul", schedule: .interval(seconds: 5))])
        XCTAssertEqual(edited.errors, [])
        XCTAssertNil(source.reloadIfChanged(redis: client, now: clock.now()))
        XCTAssertNil(reload(source))

        let replacement = directory.appendingPathComponent("new.json").path
        try file([("tock", #"{"task": "sub", "schedule": 7}"#)], timezone: "Asia/Tokyo")
            .write(toFile: replacement, atomically: false, encoding: .utf8)
        XCTAssertEqual(rename(replacement, path), 0)
        let replaced = try XCTUnwrap(reload(source))
        XCTAssertEqual(replaced.entries, [ScheduleEntry(name: "tock", task: "sub", schedule: .interval(seconds: 7))])
        XCTAssertEqual(replaced.sources, ["tock": "file"])
        XCTAssertEqual(replaced.timezone, "Asia/Tokyo")
    }

    /// Unchanged file and version: nil at every check, also when the file is rewritten with the
    /// same bytes (a new mtime) or the dynamic version moves without a change of the hash.
    func testNothingChangedGivesNil() throws {
        let text = file([("tick", #"{"task": "add", "schedule": 5}"#)])
        try write(text)
        try putDynamic("dyn", #"{"task": "dyn", "schedule": 1}"#)
        let source = source(file: path)
        _ = try source.load(redis: client)
        for _ in 0..<5 { XCTAssertNil(reload(source)) }
        try write(text)
        XCTAssertNil(reload(source))
        XCTAssertEqual(try client.command("INCR", ScheduleSource.dynamicVersionKey), .integer(2))
        XCTAssertNil(reload(source))
    }

    /// A broken edit keeps the previous entries and reports the error (once: unchanged after that);
    /// the fix brings the new entries and clears it.
    func testABrokenEditKeepsThePreviousEntriesAndReportsIt() throws {
        try write(file([("tick", #"{"task": "add", "schedule": 5}"#)], timezone: "Europe/Berlin"))
        let source = source(file: path)
        let first = try source.load(redis: client)
        try write(#"{"beat_schedule": {"tick": {"task": "add", "sched"#)
        let broken = try XCTUnwrap(reload(source))
        XCTAssertEqual(broken.entries, first.entries)
        XCTAssertEqual(broken.sources, first.sources)
        XCTAssertEqual(broken.timezone, "Europe/Berlin")
        XCTAssertEqual(broken.errors.count, 1)
        let brokenError = try XCTUnwrap(broken.errors.first)
        XCTAssertTrue(brokenError.hasPrefix("schedule file \(path) kept as last loaded: not JSON"), brokenError)
        XCTAssertNil(reload(source))

        try write(file([("tick", #"{"task": "add", "schedule": 5, "options": {"priority": 12}}"#)]))
        let invalid = try XCTUnwrap(reload(source))
        XCTAssertEqual(invalid.entries, first.entries)
        XCTAssertEqual(
            invalid.errors,
            ["schedule file \(path) kept as last loaded: beat_schedule.tick.options.priority: must be an integer 0...9"]
        )
        XCTAssertNil(reload(source))

        try write(file([("tick", #"{"task": "add", "schedule": 6}"#)]))
        let fixed = try XCTUnwrap(reload(source))
        XCTAssertEqual(fixed.entries, [ScheduleEntry(name: "tick", task: "add", schedule: .interval(seconds: 6))])
        XCTAssertNil(fixed.timezone)
        XCTAssertEqual(fixed.errors, [])
    }

    /// A file that disappears keeps its entries, with the error; when it is back it is read again.
    func testAFileThatDisappearsKeepsItsEntries() throws {
        let text = file([("tick", #"{"task": "add", "schedule": 5}"#)])
        try write(text)
        let source = source(file: path)
        let first = try source.load(redis: client)
        try FileManager.default.removeItem(atPath: path)
        let gone = try XCTUnwrap(reload(source))
        XCTAssertEqual(gone.entries, first.entries)
        XCTAssertEqual(
            gone.errors, ["schedule file \(path) kept as last loaded: cannot stat \(path): No such file or directory"])
        XCTAssertNil(reload(source))
        try write(text)
        let back = try XCTUnwrap(reload(source))
        XCTAssertEqual(
            back, ScheduleSource.Snapshot(entries: first.entries, sources: first.sources, timezone: nil, errors: []))
    }

    /// Dynamic entries are re-read when the version changes (and only then): added, changed, removed.
    func testDynamicEntriesFollowTheVersion() throws {
        let source = source(file: nil)
        XCTAssertEqual(try source.load(redis: client), .init(entries: [], sources: [:], timezone: nil, errors: []))
        XCTAssertNil(reload(source))

        XCTAssertEqual(
            try client.command("HSET", ScheduleSource.dynamicKey, "dyn", #"{"task": "a", "schedule": 1}"#), .integer(1))
        XCTAssertNil(reload(source), "the hash changed but not the version")
        XCTAssertEqual(try client.command("INCR", ScheduleSource.dynamicVersionKey), .integer(1))
        let added = try XCTUnwrap(reload(source))
        XCTAssertEqual(added.entries, [ScheduleEntry(name: "dyn", task: "a", schedule: .interval(seconds: 1))])
        XCTAssertEqual(added.sources, ["dyn": "redis"])

        try putDynamic("dyn", #"{"task": "b", "schedule": {"crontab": "0 * * * *", "timezone": "UTC"}, "args": [1]}"#)
        let changed = try XCTUnwrap(reload(source))
        XCTAssertEqual(
            changed.entries,
            [ScheduleEntry(name: "dyn", task: "b", schedule: .crontab("0 * * * *", timezone: "UTC"), args: [1])])

        XCTAssertEqual(try client.command("HDEL", ScheduleSource.dynamicKey, "dyn"), .integer(1))
        XCTAssertEqual(try client.command("INCR", ScheduleSource.dynamicVersionKey), .integer(3))
        let removed = try XCTUnwrap(reload(source))
        XCTAssertEqual(removed.entries, [])
        XCTAssertEqual(removed.sources, [:])
        XCTAssertNil(reload(source))
    }

    /// Redis gone at a check: the dynamic entries last read are kept and the failure reported;
    /// with Redis back (empty, nothing persisted) they are read again at the next check.
    func testDynamicEntriesAreKeptWhileRedisCannotBeRead() throws {
        try putDynamic("dyn", #"{"task": "a", "schedule": 1}"#)
        let source = source(file: nil)
        let first = try source.load(redis: client)
        XCTAssertEqual(first.entries.map(\.name), ["dyn"])
        redis.stop()
        let down = try XCTUnwrap(reload(source))
        XCTAssertEqual(down.entries, first.entries)
        XCTAssertEqual(down.sources, first.sources)
        XCTAssertEqual(down.errors.count, 1)
        let downError = try XCTUnwrap(down.errors.first)
        XCTAssertTrue(downError.hasPrefix("celeris:beat:dynamic kept as last read: Redis"), downError)
        try redis.start()
        client = try redis.client()
        let back = try XCTUnwrap(reload(source))
        XCTAssertEqual(back, .init(entries: [], sources: [:], timezone: nil, errors: []))
        XCTAssertNil(reload(source))
    }

    /// A dynamic entry that does not parse is skipped and reported by name; the good ones stay.
    func testABadDynamicEntryIsSkippedWithItsError() throws {
        try putDynamic("good", #"{"task": "a", "schedule": 1}"#)
        try putDynamic("syntax", #"{"task": "a", "#)
        try putDynamic("schema", #"{"task": "a", "schedule": 1, "options": {"queue": 5}}"#)
        let source = source(file: nil)
        let snapshot = try source.load(redis: client)
        XCTAssertEqual(snapshot.entries.map(\.name), ["good"])
        XCTAssertEqual(snapshot.sources, ["good": "redis"])
        XCTAssertEqual(snapshot.errors.count, 2)
        guard snapshot.errors.count == 2 else { throw TestFailure("expected 2 errors: \(snapshot.errors)") }
        XCTAssertEqual(
            snapshot.errors[0], "celeris:beat:dynamic entry schema skipped: options.queue: must be a non-empty string")
        XCTAssertTrue(
            snapshot.errors[1].hasPrefix("celeris:beat:dynamic entry syntax skipped: not JSON"), snapshot.errors[1])

        try putDynamic("syntax", #"{"task": "c", "schedule": 2}"#)
        let fixed = try XCTUnwrap(reload(source))
        XCTAssertEqual(fixed.entries.map(\.name), ["good", "syntax"])
        XCTAssertEqual(fixed.errors.count, 1)
    }

    /// A name in both the file and Redis: the file's entry is scheduled, the conflict reported;
    /// the file's zone is the default of dynamic crontabs and follows the file's edits.
    func testTheFileWinsANameInBoth() throws {
        try write(file([("tick", #"{"task": "from-file", "schedule": 5}"#)], timezone: "Asia/Tokyo"))
        try putDynamic("tick", #"{"task": "from-redis", "schedule": 1}"#)
        try putDynamic("cron", #"{"task": "c", "schedule": {"crontab": "0 3 * * *"}}"#)
        let source = source(file: path)
        let snapshot = try source.load(redis: client)
        XCTAssertEqual(
            snapshot.entries,
            [
                ScheduleEntry(name: "tick", task: "from-file", schedule: .interval(seconds: 5)),
                ScheduleEntry(name: "cron", task: "c", schedule: .crontab("0 3 * * *", timezone: "Asia/Tokyo")),
            ])
        XCTAssertEqual(snapshot.sources, ["tick": "file", "cron": "redis"])
        XCTAssertEqual(snapshot.errors, ["celeris:beat:dynamic entry tick ignored: the schedule file defines tick"])

        try write(file([("other", #"{"task": "o", "schedule": 5}"#)], timezone: "Europe/Paris"))
        let edited = try XCTUnwrap(reload(source))
        XCTAssertEqual(
            edited.entries,
            [
                ScheduleEntry(name: "other", task: "o", schedule: .interval(seconds: 5)),
                ScheduleEntry(name: "cron", task: "c", schedule: .crontab("0 3 * * *", timezone: "Europe/Paris")),
                ScheduleEntry(name: "tick", task: "from-redis", schedule: .interval(seconds: 1)),
            ])
        XCTAssertEqual(edited.sources, ["other": "file", "cron": "redis", "tick": "redis"])
        XCTAssertEqual(edited.errors, [])
    }
}
