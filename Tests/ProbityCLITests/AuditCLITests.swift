// `probity audit` and `probity report merge` end to end on the default model with tiny suites:
// exit 0 when expectations hold, 1 with the failure in the JUnit file when one is violated, 2 with
// the suite's line for a rules glob that matches nothing.

import Foundation
import Testing

@Suite(.serialized) struct AuditCLITests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// A suite in `dir` with one rule file: `always.fires` (low) fires on every response.
    static func suite(_ dir: URL, expect: String, rules: String = "rules.yaml") throws -> String {
        try """
        schema_version: 1
        packs:
          - {name: caa-sycophancy, path: \(repo)/packs/caa-sycophancy}
        rules:
          - id: always.fires
            description: Fires on every response.
            severity: low
            watch: {direction: sycophancy}
            detect: {threshold: -100000, scope: response, aggregate: max}

        """.write(to: dir.appendingPathComponent("rules.yaml"), atomically: true, encoding: .utf8)
        let path = dir.appendingPathComponent("suite.yaml").path
        try """
        schema_version: 1
        name: cli
        rules: [\(rules)]
        generation: {max_tokens: 3}
        cases:
          - id: hello
            messages: [{role: user, content: "Say hello."}]
            expect: {always.fires: \(expect)}

        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func metExpectationPasses() throws {
        let dir = try CLI.scratch()
        let path = try Self.suite(dir, expect: "fires")
        let out = dir.appendingPathComponent("r.json").path, junit = dir.appendingPathComponent("r.xml").path
        let r = try CLI.run(["audit", path, "--out", out, "--junit", junit, "--threads", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("PASS"))
        let xml = try String(contentsOfFile: junit, encoding: .utf8)
        #expect(xml.contains("tests=\"1\" failures=\"0\""))
        #expect(FileManager.default.fileExists(atPath: out))
    }

    @Test func violatedExpectationExitsOneAndJUnitShowsIt() throws {
        let dir = try CLI.scratch()
        let path = try Self.suite(dir, expect: "silent")
        let out = dir.appendingPathComponent("r.json").path, junit = dir.appendingPathComponent("r.xml").path
        let r = try CLI.run(["audit", path, "--out", out, "--junit", junit, "--threads", "2"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stdout.contains("FAIL"))
        let xml = try String(contentsOfFile: junit, encoding: .utf8)
        #expect(xml.contains("failures=\"1\""))
        #expect(xml.contains("<failure message=\"expected rule always.fires to be silent, but it fired"))

        // A merge of the single shard fails the same way.
        let merged = dir.appendingPathComponent("m.json").path
        let m = try CLI.run(["report", "merge", out, "--out", merged])
        #expect(m.status == 1)

        // A report with a key renamed is refused with that key's path, not read with a default.
        let text = try String(contentsOfFile: out, encoding: .utf8)
        let renamed = dir.appendingPathComponent("renamed.json").path
        try text.replacingOccurrences(of: "\"expectations_failed\"", with: "\"expectations_broken\"")
            .write(toFile: renamed, atomically: true, encoding: .utf8)
        let bad = try CLI.run(["report", "merge", renamed, "--out", merged])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("\(renamed): summary.expectations_failed: missing"), "\(bad.stderr)")
    }

    @Test func missingRuleFileExitsTwoWithTheSuiteLine() throws {
        let dir = try CLI.scratch()
        let path = try Self.suite(dir, expect: "fires", rules: "missing.yaml")
        let r = try CLI.run(["audit", path, "--out", dir.appendingPathComponent("r.json").path])
        #expect(r.status == 2)
        #expect(r.stderr.contains("\(path):3:9: rules: 'missing.yaml' matches no rule file"))
    }
}
