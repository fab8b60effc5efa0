import FastCore
import Foundation
import XCTest

/// The README's *Periodic tasks* section: its schedule file and its `PUT` body are what
/// `ScheduleFile` accepts, so the example users copy cannot drift from the parser.
final class ReadmeScheduleTests: XCTestCase {
    func testTheSchedulesExampleParsesToItsThreeEntries() throws {
        let lines = try ReadmeSnippetTests.section("## Periodic tasks (`celeris-beat`)", of: Self.readme())
        let json = try Self.block(after: "```json", in: lines)
        let file = try ScheduleFile.parse(json)
        XCTAssertEqual(file.entries.map(\.name), ["add-every-10s", "nightly-report", "every-5-minutes"])
        guard file.entries.count == 3 else { throw TestFailure("expected 3 entries, got \(file.entries.count)") }
        XCTAssertEqual(file.entries[0].schedule, .interval(seconds: 10))
        XCTAssertEqual(file.entries[0].args, [2, 3])
        XCTAssertEqual(file.entries[1].schedule, .crontab("30 3 * * mon-fri", timezone: "Europe/Berlin"))
        XCTAssertEqual(file.entries[1].options, ScheduleEntry.SendOptions(queue: "reports", expires: 3600))
        XCTAssertEqual(file.entries[1].catchUp, .skip)
        XCTAssertEqual(file.entries[2].schedule, .crontab("*/5 * * * *", timezone: "Europe/Berlin"))
        // Every crontab in the example computes a next run in its zone.
        for entry in file.entries {
            let due = try DueSchedule(entry.schedule, defaultZone: nil)
            XCTAssertGreaterThan(try due.next(after: 1_796_000_000_000), 1_796_000_000_000, entry.name)
        }
    }

    func testThePutExampleIsAValidEntryAndItsAnswerIsTheStoredForm() throws {
        let lines = try ReadmeSnippetTests.section("## Periodic tasks (`celeris-beat`)", of: Self.readme())
        guard let put = lines.firstIndex(where: { $0.contains("curl -X PUT") }) else {
            throw TestFailure("no PUT example")
        }
        let command = String(lines[put])
        guard let open = command.range(of: "-d '"), let close = command.range(of: "'", options: .backwards),
            open.upperBound < close.lowerBound
        else { throw TestFailure("no -d '...' in \(command)") }
        let body = String(command[open.upperBound..<close.lowerBound])
        let entry = try ScheduleFile.parseEntry(name: "ping-every-2s", text: body)
        let answer = lines[put + 1].trimmingCharacters(in: .whitespaces)
        XCTAssertEqual(entry.jsonObject().serialized(), answer)
    }

    static func readme() throws -> String {
        try String(contentsOf: TestPaths.repoRoot.appendingPathComponent("README.md"), encoding: .utf8)
    }

    /// The lines of the first fenced block opened by `fence`.
    static func block(after fence: String, in lines: [Substring]) throws -> String {
        guard let start = lines.firstIndex(where: { $0 == fence }),
            let end = lines[(start + 1)...].firstIndex(where: { $0 == "```" })
        else { throw TestFailure("no \(fence) block") }
        return lines[(start + 1)..<end].joined(separator: "\n")
    }
}
