import FastCore
import Foundation
import XCTest

/// `DueSchedule` and `DuePlan`: pure due-time arithmetic in ms on Redis's clock. Expected
/// instants are written out by hand (DST changes of 2026: Berlin 29 Mar / 25 Oct, New York
/// 1 Nov), or come from a naive reference that walks every due time one by one.
final class DuePlanTests: XCTestCase {
    private static let second: Int64 = 1000
    private static let minute: Int64 = 60_000
    private static let day: Int64 = 86_400_000

    /// ms since the epoch of an ISO 8601 UTC instant.
    private func ms(_ iso: String) throws -> Int64 {
        guard let date = ISO8601DateFormatter().date(from: iso) else { throw TestFailure("bad date \(iso)") }
        return Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    private func cron(_ expression: String, _ zone: String) throws -> DueSchedule {
        try DueSchedule(.crontab(expression, timezone: zone), defaultZone: nil)
    }

    private func every(_ seconds: Double) throws -> DueSchedule {
        try DueSchedule(.interval(seconds: seconds), defaultZone: nil)
    }

    /// The plan by definition: walk every due time from `handled` to `now` one by one.
    private func naivePlan(
        _ schedule: DueSchedule, handled: Int64, now: Int64, startedAt: Int64, catchUp: ScheduleEntry.CatchUp,
        missedCount: inout Int
    ) throws -> DuePlan {
        var due = try schedule.next(after: handled)
        var missed: Int64?
        while due <= now, due < startedAt {
            missed = due
            missedCount += 1
            due = try schedule.next(after: due)
        }
        var steps: [DuePlan.Step] = []
        if let missed { steps.append(catchUp == .once ? .send(due: missed) : .skip(due: missed)) }
        while due <= now, steps.count < DuePlan.maxLateSends {
            steps.append(.send(due: due))
            due = try schedule.next(after: due)
        }
        return DuePlan(steps: steps, next: due)
    }

    // MARK: DueSchedule

    func testIntervalIsMillisecondsRoundedAndAtLeastOne() throws {
        XCTAssertEqual(try every(10).interval, 10_000)
        XCTAssertEqual(try every(1.5).interval, 1_500)
        XCTAssertEqual(try every(0.0125).interval, 13)
        XCTAssertEqual(try every(0.0001).interval, 1)
        XCTAssertEqual(try every(2).next(after: 1_000), 3_000)
        XCTAssertNil(try cron("* * * * *", "UTC").interval)
    }

    func testBadSchedulesThrow() {
        XCTAssertThrowsError(try every(0))
        XCTAssertThrowsError(try every(-1))
        XCTAssertThrowsError(try every(.infinity))
        XCTAssertThrowsError(try every(.nan))
        XCTAssertThrowsError(try every(1e300))
        XCTAssertThrowsError(try cron("* * * *", "UTC"))
        XCTAssertThrowsError(try cron("61 * * * *", "UTC"))
        XCTAssertThrowsError(try cron("* * * * *", "Mars/Olympus_Mons"))
        XCTAssertThrowsError(try DueSchedule(.crontab("* * * * *", timezone: nil), defaultZone: "Nowhere/Town"))
    }

    func testOutOfRangeInstantsThrowInsteadOfTrapping() throws {
        for schedule in [try every(1), try cron("* * * * *", "UTC")] {
            XCTAssertThrowsError(try schedule.next(after: .max))
            XCTAssertThrowsError(try schedule.next(after: .min))
            for (handled, now, started) in [
                (Int64.min, 0, 0), (0, Int64.max, 0), (0, 0, Int64.min), (.max, .max, .max),
            ] {
                XCTAssertThrowsError(
                    try DuePlan.plan(schedule: schedule, handled: handled, now: now, startedAt: started, catchUp: .once)
                )
            }
        }
    }

    func testCrontabZoneIsTheEntrysThenTheDefaultThenUTC() throws {
        let handled = try ms("2026-06-01T00:00:00Z")
        let own = try DueSchedule(.crontab("0 3 * * *", timezone: "America/New_York"), defaultZone: "Europe/Berlin")
        let byDefault = try DueSchedule(.crontab("0 3 * * *", timezone: nil), defaultZone: "Europe/Berlin")
        let utc = try DueSchedule(.crontab("0 3 * * *", timezone: nil), defaultZone: nil)
        XCTAssertEqual(try own.next(after: handled), try ms("2026-06-01T07:00:00Z"))
        XCTAssertEqual(try byDefault.next(after: handled), try ms("2026-06-01T01:00:00Z"))
        XCTAssertEqual(try utc.next(after: handled), try ms("2026-06-01T03:00:00Z"))
    }

    /// New York falls back on 2026-11-01 at 02:00 EDT (06:00 UTC) to 01:00 EST: 01:00-01:59 happens twice.
    /// Celery's crontab, asked after an instant in the second pass, answers the first pass of the next
    /// wall time, which is earlier; `DueSchedule.next(after:)` is always strictly later.
    func testNextIsStrictlyLaterInTheSecondPassOfAFallBack() throws {
        let zone = try XCTUnwrap(TimeZone(identifier: "America/New_York"))
        let secondPass = try ms("2026-11-01T06:15:00Z")  // 01:15 EST
        let quirk = try Crontab(expression: "30 1 * * *").nextRun(
            after: Date(timeIntervalSince1970: Double(secondPass) / 1000), in: zone)
        XCTAssertEqual(quirk, Date(timeIntervalSince1970: Double(try ms("2026-11-01T05:30:00Z")) / 1000))
        XCTAssertEqual(
            try cron("30 1 * * *", "America/New_York").next(after: secondPass), try ms("2026-11-02T06:30:00Z"))
        // Every minute: the second pass has no runs (Celery's rule); the next is 02:00 EST.
        XCTAssertEqual(
            try cron("* * * * *", "America/New_York").next(after: secondPass), try ms("2026-11-01T07:00:00Z"))
    }

    /// Around the fall-back, for several expressions and a start every 5 minutes, `next(after: s)`
    /// is the first instant after `s` that is a run: a whole minute whose wall time matches the
    /// crontab and that is the first occurrence of that wall time (brute force over minutes). The
    /// chain of due times is strictly increasing.
    func testNextIsTheFirstRunAfterAcrossAFallBack() throws {
        let zone = try XCTUnwrap(TimeZone(identifier: "America/New_York"))
        let clock = ZoneClock(zone)
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = try XCTUnwrap(TimeZone(identifier: "UTC"))
        let from = try ms("2026-11-01T04:00:00Z")
        for expression in ["30 1 * * *", "* * * * *", "*/7 * * * *", "0 * * * *", "45 0-2 * * *", "59 1 * * *"] {
            let crontab = try Crontab(expression: expression)
            let schedule = try cron(expression, "America/New_York")
            func isRun(_ instant: Int64) -> Bool {
                let seconds = Int(instant / 1000)
                let local = clock.local(instant: seconds)
                let parts = utc.dateComponents(
                    [.minute, .hour, .day, .month, .weekday], from: Date(timeIntervalSince1970: Double(local)))
                guard let minute = parts.minute, let hour = parts.hour, let day = parts.day,
                    let month = parts.month, let weekday = parts.weekday
                else { return false }
                return crontab.minutes.contains(minute) && crontab.hours.contains(hour)
                    && crontab.daysOfMonth.contains(day) && crontab.monthsOfYear.contains(month)
                    && crontab.daysOfWeek.contains(weekday - 1) && clock.instant(local: local, fold: 0) == seconds
            }
            for k in 0..<(4 * 12) {
                let start = from + Int64(k) * 5 * Self.minute + 30 * Self.second
                var expected = (start / Self.minute + 1) * Self.minute
                while !isRun(expected) { expected += Self.minute }
                XCTAssertEqual(try schedule.next(after: start), expected, "\(expression) after \(start)")
            }
            var due = from
            for _ in 0..<200 {
                let next = try schedule.next(after: due)
                XCTAssertGreaterThan(next, due, expression)
                due = next
            }
        }
    }

    // MARK: DuePlan

    func testNothingDue() throws {
        let handled = try ms("2026-03-27T02:00:00Z")
        let interval = try DuePlan.plan(
            schedule: try every(10), handled: handled, now: handled + 9_999, startedAt: handled - Self.day,
            catchUp: .once)
        XCTAssertEqual(interval, DuePlan(steps: [], next: handled + 10_000))
        let nightly = try DuePlan.plan(
            schedule: try cron("0 3 * * *", "Europe/Berlin"), handled: handled, now: handled + 3_600_000,
            startedAt: handled - Self.day, catchUp: .once)
        XCTAssertEqual(nightly, DuePlan(steps: [], next: try ms("2026-03-28T02:00:00Z")))
        // A handled due time later than now (recorded by another scheduler whose clock read later).
        let ahead = try DuePlan.plan(
            schedule: try every(10), handled: handled + 50_000, now: handled, startedAt: handled, catchUp: .once)
        XCTAssertEqual(ahead, DuePlan(steps: [], next: handled + 60_000))
    }

    func testOneDue() throws {
        let handled = try ms("2026-06-01T12:00:00Z")
        for catchUp in ScheduleEntry.CatchUp.allCases {
            let interval = try DuePlan.plan(
                schedule: try every(10), handled: handled, now: handled + 10_000, startedAt: handled - 1,
                catchUp: catchUp)
            XCTAssertEqual(interval, DuePlan(steps: [.send(due: handled + 10_000)], next: handled + 20_000))
            let minutely = try DuePlan.plan(
                schedule: try cron("* * * * *", "Europe/Berlin"), handled: handled, now: handled + 61_000,
                startedAt: handled, catchUp: catchUp)
            XCTAssertEqual(
                minutely, DuePlan(steps: [.send(due: handled + Self.minute)], next: handled + 2 * Self.minute))
        }
    }

    /// Due times that passed while this scheduler ran (a standby taking over after a kill) are all
    /// sent, once each, in order, whatever `catchUp` says.
    func testHandOverSendsEveryMissedDueTimeOnceInOrder() throws {
        let handled = try ms("2026-06-01T12:00:00Z")
        for catchUp in ScheduleEntry.CatchUp.allCases {
            let interval = try DuePlan.plan(
                schedule: try every(10), handled: handled, now: handled + 35_000, startedAt: handled - 3_600_000,
                catchUp: catchUp)
            XCTAssertEqual(
                interval,
                DuePlan(
                    steps: [.send(due: handled + 10_000), .send(due: handled + 20_000), .send(due: handled + 30_000)],
                    next: handled + 40_000))
            let minutely = try DuePlan.plan(
                schedule: try cron("* * * * *", "Europe/Berlin"), handled: handled,
                now: handled + 5 * Self.minute + 30_000, startedAt: handled - 3_600_000, catchUp: catchUp)
            XCTAssertEqual(
                minutely,
                DuePlan(steps: (1...5).map { .send(due: handled + $0 * Self.minute) }, next: handled + 6 * Self.minute))
        }
    }

    /// Due times before `startedAt` collapse into one step at the latest of them: a send for `.once`,
    /// a skip for `.skip`; a due time exactly at `startedAt` is the scheduler's own, sent.
    func testOutageOnceAndSkipInterval() throws {
        let t = try ms("2026-06-01T12:00:00Z")
        let schedule = try every(10)
        let once = try DuePlan.plan(
            schedule: schedule, handled: t, now: t + 125_000, startedAt: t + 95_000, catchUp: .once)
        XCTAssertEqual(
            once,
            DuePlan(
                steps: [
                    .send(due: t + 90_000), .send(due: t + 100_000), .send(due: t + 110_000), .send(due: t + 120_000),
                ],
                next: t + 130_000))
        let skip = try DuePlan.plan(
            schedule: schedule, handled: t, now: t + 125_000, startedAt: t + 95_000, catchUp: .skip)
        XCTAssertEqual(
            skip,
            DuePlan(
                steps: [
                    .skip(due: t + 90_000), .send(due: t + 100_000), .send(due: t + 110_000), .send(due: t + 120_000),
                ],
                next: t + 130_000))
        let boundary = try DuePlan.plan(
            schedule: schedule, handled: t, now: t + 100_000, startedAt: t + 100_000, catchUp: .skip)
        XCTAssertEqual(boundary, DuePlan(steps: [.skip(due: t + 90_000), .send(due: t + 100_000)], next: t + 110_000))
        // Started after now (clock readings out of order): everything up to now is before the start.
        let early = try DuePlan.plan(
            schedule: schedule, handled: t, now: t + 45_000, startedAt: t + 60_000, catchUp: .once)
        XCTAssertEqual(early, DuePlan(steps: [.send(due: t + 40_000)], next: t + 50_000))
    }

    /// Berlin springs forward on 2026-03-29 (02:00 CET -> 03:00 CEST) and falls back on 2026-10-25
    /// (03:00 CEST -> 02:00 CET): "0 3 * * *" is 02:00 UTC in winter, 01:00 UTC in summer.
    func testOutageOnceAndSkipCrontabAcrossBerlinDST() throws {
        let nightly = try cron("0 3 * * *", "Europe/Berlin")
        for (handled, startedAt, latest, next) in [
            ("2026-03-27T02:00:00Z", "2026-04-02T12:00:00Z", "2026-04-02T01:00:00Z", "2026-04-03T01:00:00Z"),
            ("2026-10-23T01:00:00Z", "2026-10-27T12:00:00Z", "2026-10-27T02:00:00Z", "2026-10-28T02:00:00Z"),
        ] {
            let start = try ms(startedAt)
            let once = try DuePlan.plan(
                schedule: nightly, handled: try ms(handled), now: start + 10 * Self.minute, startedAt: start,
                catchUp: .once)
            XCTAssertEqual(once, DuePlan(steps: [.send(due: try ms(latest))], next: try ms(next)))
            let skip = try DuePlan.plan(
                schedule: nightly, handled: try ms(handled), now: start + 10 * Self.minute, startedAt: start,
                catchUp: .skip)
            XCTAssertEqual(skip, DuePlan(steps: [.skip(due: try ms(latest))], next: try ms(next)))
        }
        // Every minute across the spring-forward gap: UTC minutes run on (01:59 CET is followed by 03:00 CEST).
        let minutely = try cron("* * * * *", "Europe/Berlin")
        let handled = try ms("2026-03-29T00:30:00Z")
        let start = try ms("2026-03-29T01:10:00Z")
        for catchUp in ScheduleEntry.CatchUp.allCases {
            let plan = try DuePlan.plan(
                schedule: minutely, handled: handled, now: start + 2 * Self.minute + 30_000, startedAt: start,
                catchUp: catchUp)
            let missed = start - Self.minute
            XCTAssertEqual(
                plan,
                DuePlan(
                    steps: [
                        catchUp == .once ? .send(due: missed) : .skip(due: missed), .send(due: start),
                        .send(due: start + Self.minute), .send(due: start + 2 * Self.minute),
                    ], next: start + 3 * Self.minute))
        }
    }

    /// A year without a scheduler: one step, found without walking the ~31.5 million seconds or
    /// ~525,000 minutes.
    func testYearLongOutageIsOneStepAndQuick() throws {
        let handled = try ms("2025-01-01T00:00:00Z")
        let start = try ms("2026-01-01T00:00:30Z")
        let began = Date()
        let perSecond = try DuePlan.plan(
            schedule: try every(1), handled: handled, now: start + 500, startedAt: start + 250, catchUp: .once)
        let intervalSeconds = Date().timeIntervalSince(began)
        XCTAssertEqual(perSecond, DuePlan(steps: [.send(due: start)], next: start + 1000))

        let perMinute = Date()
        for zone in ["UTC", "Europe/Berlin", "America/New_York"] {
            let plan = try DuePlan.plan(
                schedule: try cron("* * * * *", zone), handled: handled, now: start + 10_000, startedAt: start,
                catchUp: .skip)
            XCTAssertEqual(
                plan, DuePlan(steps: [.skip(due: start - 30_000)], next: start + 30_000), zone)
        }
        let nightly = try DuePlan.plan(
            schedule: try cron("0 3 * * *", "Europe/Berlin"), handled: handled, now: start + 10_000, startedAt: start,
            catchUp: .once)
        XCTAssertEqual(
            nightly,
            DuePlan(steps: [.send(due: try ms("2025-12-31T02:00:00Z"))], next: try ms("2026-01-01T02:00:00Z")))
        print(
            "DuePlanTests: 1-year outage: every-second interval planned in",
            String(format: "%.4f s;", intervalSeconds), "3 every-minute crontabs + 1 nightly in",
            String(format: "%.4f s", Date().timeIntervalSince(perMinute)))
    }

    /// At most `maxLateSends` steps per plan (the catch-up step counts); the next plan, from the last
    /// step planned, goes on where this one stopped.
    func testLateSendsAreCappedAndTheRestComeNextTurn() throws {
        XCTAssertEqual(DuePlan.maxLateSends, 100)
        let t = try ms("2026-06-01T12:00:00Z")
        let schedule = try every(1)
        let first = try DuePlan.plan(schedule: schedule, handled: t, now: t + 1_000_000, startedAt: t, catchUp: .once)
        XCTAssertEqual(first, DuePlan(steps: (1...100).map { .send(due: t + $0 * 1000) }, next: t + 101_000))
        let second = try DuePlan.plan(
            schedule: schedule, handled: t + 100_000, now: t + 1_000_000, startedAt: t, catchUp: .once)
        XCTAssertEqual(second, DuePlan(steps: (101...200).map { .send(due: t + $0 * 1000) }, next: t + 201_000))

        let withMissed = try DuePlan.plan(
            schedule: schedule, handled: t, now: t + 1_000_000, startedAt: t + 50_500, catchUp: .skip)
        XCTAssertEqual(
            withMissed,
            DuePlan(steps: [.skip(due: t + 50_000)] + (51...149).map { .send(due: t + $0 * 1000) }, next: t + 150_000))

        let minutely = try DuePlan.plan(
            schedule: try cron("* * * * *", "UTC"), handled: t, now: t + Self.day, startedAt: t, catchUp: .once)
        XCTAssertEqual(
            minutely,
            DuePlan(steps: (1...100).map { .send(due: t + $0 * Self.minute) }, next: t + 101 * Self.minute))
    }

    /// An entry anchored in the second pass of New York's repeated hour: every step and `next` are
    /// strictly increasing and after the handled due time.
    func testPlanIsStrictlyIncreasingAcrossAFallBack() throws {
        let handled = try ms("2026-11-01T06:15:00Z")  // 01:15 EST, second pass
        for expression in ["30 1 * * *", "* * * * *", "*/10 * * * *"] {
            let schedule = try cron(expression, "America/New_York")
            let plan = try DuePlan.plan(
                schedule: schedule, handled: handled, now: handled + 3 * Self.day, startedAt: handled, catchUp: .once)
            let dues = [handled] + plan.steps.map(\.due) + [plan.next]
            XCTAssertGreaterThan(plan.steps.count, 1, expression)
            for (a, b) in zip(dues, dues.dropFirst()) { XCTAssertGreaterThan(b, a, expression) }
        }
        let nightly = try DuePlan.plan(
            schedule: try cron("30 1 * * *", "America/New_York"), handled: try ms("2026-10-30T05:30:00Z"),
            now: try ms("2026-11-03T00:00:00Z"), startedAt: 0, catchUp: .once)
        XCTAssertEqual(
            nightly,
            DuePlan(
                steps: [
                    .send(due: try ms("2026-10-31T05:30:00Z")), .send(due: try ms("2026-11-01T05:30:00Z")),
                    .send(due: try ms("2026-11-02T06:30:00Z")),
                ], next: try ms("2026-11-03T06:30:00Z")))
    }

    /// `DuePlan.plan` equals the naive walk over random entries, outages and zones, including crontab
    /// outages longer than the walk limit (so the bisection is what answers).
    func testPlanEqualsTheNaiveWalk() throws {
        var random = SplitMix(seed: 22)  // TypedArgumentsTests.swift
        let expressions = [
            "* * * * *", "*/7 * * * *", "0 3 * * *", "30 1 * * *", "* 3 * * *", "*/5 9-17 * * mon-fri",
            "0 0 1 * *", "15 2 29 2 *", "* * 1 * *", "*/2 * * * *", "* * * * *",
        ]
        let zones = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]
        let base = try ms("2026-01-01T00:00:00Z")
        var bisected = 0
        var compared = 0
        for round in 0..<120 {
            let schedule: DueSchedule
            let name: String
            let long = round % 3 == 0
            if round % 2 == 0 {
                name = "\(expressions[Int(random.next() % UInt64(expressions.count))]) \(zones[Int(random.next() % 4)])"
                let parts = name.split(separator: " ")
                schedule = try cron(parts[0..<5].joined(separator: " "), String(parts[5]))
            } else {
                let seconds = [0.001, 0.25, 1, 7, 60, 3600.5, 86_400][Int(random.next() % 7)]
                name = "every \(seconds)"
                schedule = try every(seconds)
            }
            let span = long ? 30 * Self.day : 6 * 3_600_000
            let handled = base + Int64(random.next() % UInt64(300 * Self.day))
            let startedAt = handled + Int64(random.next() % UInt64(span)) - Self.minute
            let now = startedAt + Int64(random.next() % UInt64(3 * 3_600_000))
            let catchUp: ScheduleEntry.CatchUp = random.next() % 2 == 0 ? .once : .skip
            if schedule.interval.map({ (now - handled) / $0 > 2_000_000 }) ?? false { continue }
            let plan = try DuePlan.plan(
                schedule: schedule, handled: handled, now: now, startedAt: startedAt, catchUp: catchUp)
            var missed = 0
            let expected = try naivePlan(
                schedule, handled: handled, now: now, startedAt: startedAt, catchUp: catchUp, missedCount: &missed)
            XCTAssertEqual(plan, expected, "\(name) handled \(handled) started \(startedAt) now \(now) \(catchUp)")
            if schedule.interval == nil, missed > 64 { bisected += 1 }  // DuePlan.walkLimit
            compared += 1
        }
        print("DuePlanTests: \(compared) plans equal the naive walk, \(bisected) crontab outages past the walk limit")
        XCTAssertGreaterThanOrEqual(bisected, 5)
    }

    /// The same comparison with the scheduler started within three hours of a DST change (both
    /// directions, four zones, Lord Howe's half-hour shift and Santiago's change at midnight
    /// included), after outages of up to ten days: the bisection lands on the same due time as the walk.
    func testPlanEqualsTheNaiveWalkAroundDSTChanges() throws {
        var random = SplitMix(seed: 2026)  // TypedArgumentsTests.swift
        let changes: [(zone: String, at: String)] = [
            ("Europe/Berlin", "2026-03-29T01:00:00Z"), ("Europe/Berlin", "2026-10-25T01:00:00Z"),
            ("America/New_York", "2026-03-08T07:00:00Z"), ("America/New_York", "2026-11-01T06:00:00Z"),
            ("Australia/Lord_Howe", "2026-04-04T15:00:00Z"), ("Australia/Lord_Howe", "2026-10-03T15:30:00Z"),
            ("America/Santiago", "2026-04-05T03:00:00Z"), ("America/Santiago", "2026-09-06T04:00:00Z"),
        ]
        let expressions = [
            "* * * * *", "30 2 * * *", "*/20 1-2 * * *", "0 * * * *", "45 1-3 * * *", "*/7 * * * *", "30 0 * * *",
        ]
        var bisected = 0
        for change in changes {
            let at = try ms(change.at)
            for expression in expressions {
                let schedule = try cron(expression, change.zone)
                for _ in 0..<3 {
                    let startedAt = at + Int64(random.next() % UInt64(6 * 3_600_000)) - 3 * 3_600_000
                    let handled = startedAt - Int64(random.next() % UInt64(10 * Self.day))
                    let now = startedAt + Int64(random.next() % UInt64(3_600_000))
                    let catchUp: ScheduleEntry.CatchUp = random.next() % 2 == 0 ? .once : .skip
                    var missed = 0
                    let expected = try naivePlan(
                        schedule, handled: handled, now: now, startedAt: startedAt, catchUp: catchUp,
                        missedCount: &missed)
                    let plan = try DuePlan.plan(
                        schedule: schedule, handled: handled, now: now, startedAt: startedAt, catchUp: catchUp)
                    XCTAssertEqual(
                        plan, expected,
                        "\(expression) \(change.zone) handled \(handled) started \(startedAt) now \(now)")
                    if missed > 64 { bisected += 1 }  // DuePlan.walkLimit
                }
            }
        }
        print("DuePlanTests: \(changes.count * expressions.count * 3) plans around DST changes, \(bisected) bisected")
        XCTAssertGreaterThanOrEqual(bisected, 40)
    }
}
