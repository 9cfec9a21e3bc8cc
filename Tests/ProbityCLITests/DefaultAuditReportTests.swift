// The main job's output pinned: the default audit on the default model writes, apart from its
// timestamps and timings, exactly the committed report and JUnit XML. A change to the engine, the
// rules or the report code that moves any number, text or key shows up here as a diff. After an
// intended change, `PROBITY_UPDATE_GOLDEN=1 swift test -c release --filter DefaultAuditReport`
// rewrites the fixtures; review their diff before committing it. The report is the same whether cases
// run one at a time, each run with its own pass of the prompt (`--batch-size 1`), or batched with
// shared prompts (the default): both runs are held to the same fixture.

import Foundation
import ProbityAudit
import Testing

@Suite(.serialized) struct DefaultAuditReportTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let golden = repo.appendingPathComponent("Tests/Fixtures/reports")

    /// The report with what differs between runs zeroed: timestamps and durations.
    static func normalized(_ r: AuditReport) throws -> Data {
        var r = r
        r.startedAt = ""
        r.finishedAt = ""
        r.timings.totalSeconds = 0
        r.timings.cases = r.timings.cases.mapValues { _ in 0 }
        return try r.json()
    }

    /// JUnit XML with its times zeroed.
    static func normalized(junit: String) -> String {
        var out = ""
        var rest = Substring(junit)
        while let start = rest.range(of: " time=\"") {
            out += rest[..<start.upperBound]
            rest = rest[start.upperBound...]
            guard let end = rest.firstIndex(of: "\"") else { break }
            out += "0"
            rest = rest[end...]
        }
        return out + rest
    }

    /// The first line where two texts differ, for a readable failure.
    static func firstDifference(_ a: String, _ b: String) -> String {
        let x = a.split(separator: "\n", omittingEmptySubsequences: false)
        let y = b.split(separator: "\n", omittingEmptySubsequences: false)
        for i in 0..<max(x.count, y.count) {
            let l = i < x.count ? String(x[i]) : "<end>", r = i < y.count ? String(y[i]) : "<end>"
            if l != r { return "line \(i + 1): expected \(r.prefix(200)), found \(l.prefix(200))" }
        }
        return "no line differs"
    }

    @Test(arguments: [Audit.defaultBatchSize, 1])
    func defaultAuditWritesThePinnedReport(batchSize: Int) throws {
        let dir = try CLI.scratch()
        let out = dir.appendingPathComponent("default.json").path, junit = dir.appendingPathComponent("default.junit.xml").path
        let r = try CLI.run(["audit", "audits/default.yaml", "--out", out, "--junit", junit, "--threads", "2",
                             "--batch-size", String(batchSize)], in: Self.repo)
        #expect(r.status == 0 || r.status == 1, "\(r.stderr)")
        let written = try Data(contentsOf: URL(fileURLWithPath: out))
        let report = try AuditReport.read(path: out)
        // Reading is lossless: the value writes the same bytes again.
        #expect(try report.json() == written)

        let json = try Self.normalized(report)
        let xml = Self.normalized(junit: try String(contentsOfFile: junit, encoding: .utf8))
        let goldenJSON = Self.golden.appendingPathComponent("default.json")
        let goldenXML = Self.golden.appendingPathComponent("default.junit.xml")
        if ProcessInfo.processInfo.environment["PROBITY_UPDATE_GOLDEN"] == "1", batchSize == Audit.defaultBatchSize {
            try json.write(to: goldenJSON, options: .atomic)
            try Data(xml.utf8).write(to: goldenXML, options: .atomic)
        }
        let expected = try Data(contentsOf: goldenJSON)
        let expectedXML = try String(contentsOf: goldenXML, encoding: .utf8)
        if json != expected {
            let actual = dir.appendingPathComponent("default.normalized.json")
            try json.write(to: actual)
            let difference = Self.firstDifference(String(decoding: json, as: UTF8.self), String(decoding: expected, as: UTF8.self))
            Issue.record("the default audit's report at --batch-size \(batchSize) differs from \(goldenJSON.path) (normalized report at \(actual.path)): \(difference)")
        }
        #expect(xml == expectedXML, "\(Self.firstDifference(xml, expectedXML))")
        #expect(r.status == (report.summary.passed ? 0 : 1))

        // Where no intervention edits any position, steering changes nothing, to the bit.
        var untouched = 0
        for c in report.cases {
            guard let effects = c.effects, let steered = c.steered,
                  effects.interventions.allSatisfy({ $0.positionsEdited == 0 }) else { continue }
            untouched += 1
            #expect(steered.text == c.baseline.text && !effects.textChanged, "\(c.id)")
            #expect(effects.kl?.allSatisfy { $0 == 0 } == true && effects.klMax == 0, "\(c.id): \(effects.kl ?? [])")
        }
        #expect(untouched > 0, "no case of the default audit leaves every intervention idle")
    }
}
