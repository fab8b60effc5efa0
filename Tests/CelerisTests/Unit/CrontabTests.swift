import FastCore
import Foundation
import XCTest

/// `Crontab` against Celery 5.7's own `crontab`: Python Celery, run in the test,
/// computes the expected next runs (`remaining_estimate` with `nowfun`, in the
/// app's time zone) and which field specs it refuses; nothing expected is written here.
final class CrontabTests: XCTestCase {
    /// Celery's side: reads a JSON request on stdin, answers JSON on stdout.
    private static let script = #"""
        import json, sys
        from datetime import datetime, timezone
        from celery import Celery
        from celery.schedules import crontab

        req = json.load(sys.stdin)
        out = {"runs": [], "fields": [], "expressions": []}
        apps = {}
        def app_for(tz):
            if tz not in apps:
                a = Celery("t", set_as_current=False)
                a.conf.timezone = tz
                a.conf.enable_utc = True
                apps[tz] = a
            return apps[tz]

        for case in req["runs"]:
            m, h, dom, moy, dow = case["expr"].split(" ")
            app = app_for(case["tz"])
            chains = []
            for start in case["starts"]:
                last = datetime.fromtimestamp(start, tz=timezone.utc)
                chain = []
                for _ in range(req["chain"]):
                    c = crontab(m, h, dow, dom, moy, app=app, nowfun=lambda last=last: last)
                    nxt = last + c.remaining_estimate(last)
                    chain.append(round(nxt.timestamp(), 6))
                    if nxt <= last:
                        break
                    last = nxt
                chains.append(chain)
            out["runs"].append(chains)

        for field, spec in req["fields"]:
            try:
                c = crontab(**{field: spec})
                out["fields"].append(sorted(getattr(c, field)))
            except Exception as e:
                out["fields"].append(None)

        for expr in req["expressions"]:
            try:
                crontab.from_string(expr)
                out["expressions"].append(True)
            except Exception:
                out["expressions"].append(False)
        out["due"] = []
        for expr, tz, last, now in req.get("due", []):
            m, h, dom, moy, dow = expr.split(" ")
            nowdt = datetime.fromtimestamp(now, tz=timezone.utc)
            c = crontab(m, h, dow, dom, moy, app=app_for(tz), nowfun=lambda: nowdt)
            due, nxt = c.is_due(datetime.fromtimestamp(last, tz=timezone.utc))
            out["due"].append([1.0 if due else 0.0, float(nxt)])
        print(json.dumps(out))
        """#

    private struct Reply: Decodable {
        let runs: [[[Double]]]
        let fields: [[Int]?]
        let expressions: [Bool]
        let due: [[Double]]
    }

    private static let expressions = [
        "* * * * *", "*/15 * * * *", "30 2 * * *", "0 0 * * *", "0 3 * * 0", "45 1-3 * * *",
        "0,30 */2 * * mon-fri", "0 9 1 * *", "0 12 31 * *", "15 2 29 2 *", "0 8 1-7 * mon", "5 4 * * sun",
        "0 22 * * fri-mon", "*/7 * * * *", "59 23 28-31 * *", "0 2 * 3,10 0", "30 1 */2 * *",
        "10-50/20 2 * * *", "0 0 1 jan,jul *", "0 */6 15 * thu", "0 2 25 10 *", "30 2 29 3 *", "30 2 8 3 *",
        "30 1 1 11 *", "*/20 1-2 * * *",
    ]

    private static let zones = ["Europe/Berlin", "America/New_York", "UTC", "Australia/Lord_Howe", "America/Santiago"]

    /// Start instants: the 2026 DST changes of Berlin (29 Mar, 25 Oct) and New York
    /// (8 Mar, 1 Nov) every 20 minutes across each change, month ends, year end, and
    /// around the leap day 2028-02-29.
    private static func starts() throws -> [Double] {
        let f = ISO8601DateFormatter()
        func at(_ s: String) throws -> Double {
            guard let d = f.date(from: s) else { throw TestFailure("bad date \(s)") }
            return d.timeIntervalSince1970
        }
        var out: [Double] = []
        for change in [
            "2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z", "2026-03-08T07:00:00Z", "2026-11-01T06:00:00Z",
            "2026-04-05T03:00:00Z", "2026-09-06T04:00:00Z",
        ] {
            let t = try at(change)
            for k in -7...7 { out.append(t + Double(k) * 1200) }
        }
        for s in [
            "2026-01-31T23:59:30Z", "2026-02-28T23:30:00Z", "2026-04-30T22:00:00Z", "2026-12-31T23:00:00Z",
            "2026-06-15T12:34:56Z", "2028-02-28T23:00:00Z", "2028-02-29T12:00:00Z", "2028-02-29T23:59:59Z",
            "2027-02-28T12:00:00Z", "2026-10-04T15:00:00Z", "2026-04-05T15:00:00Z",
        ] {
            out.append(try at(s))
        }
        out.append(try at("2026-03-29T00:59:59Z") + 0.5)
        return out
    }

    private static let fieldSpecs = [
        "*", "*/15", "1-5", "1-5/2", "5-1", "fri-mon", "mon-fri", "jan", "mar", "Monday", "", ",", "1,,2", "*/0",
        "*/", "1-5/", "1-5/0", "-1", " 5", "5 ", "+5", "1_0", "1__0", "_1", "60", "59", "24", "23", "0", "7", "6",
        "32", "31", "13", "12", "1-2-3", "*/x", "*x", "**", "1-", "-", "abc", "1-5/2x", "*/1_0",
        "99999999999999999999", "*/99999999999999999999", "1-5/3,7", "sun", "sat-sun", "dec-feb", "00", "007",
        "0x10", "1.5", "1e2", "\t3", "mon-", "L", "?", "5/2", "*/2-3", "2-30/7", "*/5,30-40", "1-99", "*/-1",
        "1- 5", "1 -5", "janu-mar", "sundae", "x-y",
    ]

    private static let badExpressions = [
        "* * * *", "* * * * * *", "*  * * * *", " * * * * *", "0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 29 2 *",
        "0 0 31 2,4 *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 7", "a b c d e", "",
        "0 0 1-31 2 *", "*/0 * * * *", "0 12 * * 1,",
    ]

    /// How long the Celery script may take before the test fails (and the script is killed).
    private static let celeryTimeout = 300.0

    private func runCelery(_ request: [String: Any]) throws -> Reply {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try TestPaths.python())
        process.arguments = ["-c", Self.script]
        // Request, reply and stderr go through files, so neither side can block on a full pipe
        // and the wait below is bounded.
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("crontab-\(UUID().uuidString)")
        let (input, output, errors) = (
            base.appendingPathExtension("in"), base.appendingPathExtension("out"), base.appendingPathExtension("err")
        )
        defer { for f in [input, output, errors] { try? FileManager.default.removeItem(at: f) } }
        try JSONSerialization.data(withJSONObject: request).write(to: input)
        for f in [output, errors] { _ = FileManager.default.createFile(atPath: f.path, contents: nil) }
        process.standardInput = try FileHandle(forReadingFrom: input)
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = try FileHandle(forWritingTo: errors)
        try withSignalsUnblocked { try process.run() }
        let deadline = Date().addingTimeInterval(Self.celeryTimeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            let log = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
            throw TestFailure("Celery script did not finish within \(Int(Self.celeryTimeout)) s (killed): \(log)")
        }
        process.waitUntilExit()
        let data = try Data(contentsOf: output)
        guard process.terminationStatus == 0 else {
            let log = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
            throw TestFailure("Celery script failed (\(process.terminationStatus)): \(log)")
        }
        return try JSONDecoder().decode(Reply.self, from: data)
    }

    /// For every expression, zone and start: the next four runs Celery computes, chained
    /// (each from the previous run), equal Swift's to the microsecond.
    func testNextRunsMatchCelery() throws {
        let starts = try Self.starts()
        let chain = 4
        var cases: [[String: Any]] = []
        for expr in Self.expressions {
            for zone in Self.zones { cases.append(["expr": expr, "tz": zone, "starts": starts]) }
        }
        let reply = try runCelery([
            "runs": cases, "chain": chain, "fields": [[String]](), "expressions": [String](), "due": [[Any]](),
        ])
        XCTAssertEqual(reply.runs.count, cases.count)
        var compared = 0
        var mismatches = 0
        for (i, expected) in reply.runs.enumerated() {
            let expr = Self.expressions[i / Self.zones.count]
            let zoneName = Self.zones[i % Self.zones.count]
            let zone = try XCTUnwrap(TimeZone(identifier: zoneName))
            let cron = try Crontab(expression: expr)
            for (j, celeryChain) in expected.enumerated() {
                var last = Date(timeIntervalSince1970: starts[j])
                var swiftChain: [Double] = []
                for _ in 0..<chain {
                    let next = try cron.nextRun(after: last, in: zone)
                    swiftChain.append((next.timeIntervalSince1970 * 1e6).rounded() / 1e6)
                    if next <= last { break }
                    last = next
                }
                compared += celeryChain.count
                if swiftChain != celeryChain {
                    mismatches += 1
                    if mismatches <= 20 {
                        XCTFail(
                            "\(expr) in \(zoneName) from \(Date(timeIntervalSince1970: starts[j])): Celery \(celeryChain.map { Date(timeIntervalSince1970: $0) }), Swift \(swiftChain.map { Date(timeIntervalSince1970: $0) })"
                        )
                    }
                }
            }
        }
        XCTAssertEqual(mismatches, 0)
        print("CrontabTests: \(compared) next-run instants compared with Celery, \(mismatches) chains differ")
    }

    /// Every field spec, in every field: accepted with the same values as Celery, or
    /// refused (with an error, not a trap) where Celery raises.
    func testFieldSpecsMatchCelery() throws {
        let fields = ["minute", "hour", "day_of_week", "day_of_month", "month_of_year"]
        var pairs: [[String]] = []
        for field in fields {
            for spec in Self.fieldSpecs { pairs.append([field, spec]) }
        }
        let reply = try runCelery([
            "runs": [[String: Any]](), "chain": 0, "fields": pairs, "expressions": Self.badExpressions,
            "due": [[Any]](),
        ])
        XCTAssertEqual(reply.fields.count, pairs.count)
        for (pair, expected) in zip(pairs, reply.fields) {
            let field = pair[0]
            let spec = pair[1]
            var swift: [Int]?
            do {
                let c: Crontab
                switch field {
                case "minute": c = try Crontab(minute: spec)
                case "hour": c = try Crontab(hour: spec)
                case "day_of_week": c = try Crontab(dayOfWeek: spec)
                case "day_of_month": c = try Crontab(dayOfMonth: spec)
                default: c = try Crontab(monthOfYear: spec)
                }
                let values = [c.minutes, c.hours, c.daysOfWeek, c.daysOfMonth, c.monthsOfYear]
                swift = values[fields.firstIndex(of: field) ?? 0].sorted()
            } catch {
                XCTAssertFalse(error.message.isEmpty)
                swift = nil
            }
            XCTAssertEqual(swift, expected, "\(field)=\(spec.debugDescription)")
        }
        XCTAssertEqual(reply.expressions.count, Self.badExpressions.count)
        for (expr, accepted) in zip(Self.badExpressions, reply.expressions) {
            let swiftAccepted = (try? Crontab(expression: expr)) != nil
            XCTAssertEqual(swiftAccepted, accepted, "from_string(\(expr.debugDescription))")
        }
    }

    /// 3,000 random field specs (seeded, from cron's alphabet plus junk), each in a random
    /// field: the same value sets as Celery or refused where Celery raises; never a trap.
    func testRandomSpecsMatchCelery() throws {
        let fields = ["minute", "hour", "day_of_week", "day_of_month", "month_of_year"]
        let alphabet = Array("0123456789*/-,*/-,135 _xjanmonfriDEC")
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func random(_ n: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(n))
        }
        var pairs: [[String]] = []
        for _ in 0..<3000 {
            let spec = String((0..<(1 + random(8))).map { _ in alphabet[random(alphabet.count)] })
            pairs.append([fields[random(fields.count)], spec])
        }
        let reply = try runCelery([
            "runs": [[String: Any]](), "chain": 0, "fields": pairs, "expressions": [String](), "due": [[Any]](),
        ])
        XCTAssertEqual(reply.fields.count, pairs.count)
        var accepted = 0
        for (pair, expected) in zip(pairs, reply.fields) {
            let index = fields.firstIndex(of: pair[0]) ?? 0
            var specs = ["*", "*", "*", "*", "*"]
            specs[index] = pair[1]
            let swift: [Int]?
            do {
                let c = try Crontab(
                    minute: specs[0], hour: specs[1], dayOfWeek: specs[2], dayOfMonth: specs[3], monthOfYear: specs[4])
                swift = [c.minutes, c.hours, c.daysOfWeek, c.daysOfMonth, c.monthsOfYear][index].sorted()
                accepted += 1
            } catch {
                swift = nil
            }
            XCTAssertEqual(swift, expected, "\(pair[0])=\(pair[1].debugDescription)")
        }
        print("CrontabTests: \(pairs.count) random specs, \(accepted) accepted by both")
    }

    /// Instants Celery's datetime cannot hold (past year 9999, NaN, huge) give an error, not a trap.
    func testOutOfRangeInstantsThrow() throws {
        let zone = try XCTUnwrap(TimeZone(identifier: "Europe/Berlin"))
        let end = try XCTUnwrap(ISO8601DateFormatter().date(from: "9999-12-31T23:59:00Z"))
        for expr in ["* * * * *", "0 0 * * *", "0 0 29 2 *"] {
            let cron = try Crontab(expression: expr)
            for t in [end, Date(timeIntervalSince1970: .nan), Date(timeIntervalSince1970: 1e20)] {
                XCTAssertThrowsError(try cron.nextRun(after: t, in: zone), "\(expr) after \(t)")
            }
        }
    }

    /// `isDue` as Celery's `is_due` (run in Celery with `nowfun`): before, at and after
    /// a run, across the Berlin spring-forward change; an interval schedule as Celery's
    /// `schedule(run_every)`'s definition (due after the interval, then the full interval).
    func testIsDueMatchesCelery() throws {
        let zone = "Europe/Berlin"
        let tz = try XCTUnwrap(TimeZone(identifier: zone))
        let starts = try Self.starts()
        var queries: [[Any]] = []
        var swift: [[Double]] = []
        for expr in ["*/15 * * * *", "30 2 * * *", "0 0 29 2 *"] {
            let cron = try Crontab(expression: expr)
            for last in starts {
                let lastDate = Date(timeIntervalSince1970: last)
                let next = try cron.nextRun(after: lastDate, in: tz)
                for now in [lastDate, next.addingTimeInterval(-10), next, next.addingTimeInterval(61)] {
                    queries.append([expr, zone, last, now.timeIntervalSince1970])
                    let state = try cron.isDue(lastRun: lastDate, now: now, in: tz)
                    swift.append([state.isDue ? 1 : 0, (state.next * 1e6).rounded() / 1e6])
                }
            }
        }
        let reply = try runCelery([
            "runs": [[String: Any]](), "chain": 0, "fields": [[String]](), "expressions": [String](), "due": queries,
        ])
        XCTAssertEqual(reply.due.count, swift.count)
        for (i, (celery, mine)) in zip(reply.due, swift).enumerated() {
            XCTAssertEqual(celery[0], mine[0], "is_due \(queries[i])")
            XCTAssertEqual(celery[1], mine[1], accuracy: 1e-5, "is_due next \(queries[i])")
        }
        let last = Date(timeIntervalSince1970: starts[0])
        let every = try IntervalSchedule(seconds: 30)
        XCTAssertEqual(
            every.isDue(lastRun: last, now: last.addingTimeInterval(12)), ScheduleState(isDue: false, next: 18))
        XCTAssertEqual(
            every.isDue(lastRun: last, now: last.addingTimeInterval(31)), ScheduleState(isDue: true, next: 30))
        for bad in [0, -1, Double.nan, Double.infinity] {
            XCTAssertThrowsError(try IntervalSchedule(seconds: bad))
        }
    }
}
