// `probity rules test` on the default model: the default rules (rules/*.yaml, over the SAE
// dictionary), the demo and the CAA rules (rules/caa) against their own embedded tests, through the
// real binary and its --json output; and a copy with one expectation turned round, which must fail.

import Foundation
import ProbityRules
import ProbityTestSupport
import Testing

@Suite(.serialized) struct ExampleRulesCLITests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// The tests of a `rules test --json` document, after checking the document against
    /// docs/rules-test.schema.json and decoding it as the typed report.
    static func tests(_ stdout: String) throws -> [[String: Any]] {
        let document = try #require(try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any], "\(stdout)")
        let schemaData = try Data(contentsOf: URL(fileURLWithPath: repo + "/docs/rules-test.schema.json"))
        let schema = try #require(try JSONSerialization.jsonObject(with: schemaData) as? [String: Any])
        let violations = JSONSchemaValidator(root: schema).validate(document)
        #expect(violations.isEmpty, "\(violations)")
        let report = try JSONDecoder().decode(RuleTestReport.self, from: Data(stdout.utf8))
        #expect(report.passed + report.failed == report.tests.count)
        #expect(report.tests.allSatisfy { $0.pass == $0.problems.isEmpty })
        return try #require(document["tests"] as? [[String: Any]])
    }

    /// The default rules and the demo pass every embedded test, so the command exits 0.
    @Test func defaultRulesPassTheirOwnTests() throws {
        let r = try CLI.run(["rules", "test", Self.repo + "/rules", Self.repo + "/rules/demo", "--json"])
        let tests = try Self.tests(r.stdout)
        #expect(tests.count == 8)
        for t in tests {
            let key = "\(t["rule"] as? String ?? "?")/\(t["test"] as? String ?? "?")"
            #expect(t["pass"] as? Bool == true, "\(key): \(t["problems"] ?? ""), observed \(t["observed"] ?? "")")
        }
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test func caaRulesPassTheirOwnTests() throws {
        let r = try CLI.run(["rules", "test", Self.repo + "/rules/caa", "--json"])
        let tests = try Self.tests(r.stdout)
        #expect(tests.count == 7)
        // Thresholds go out in their shortest form: -7.2, not -7.199999809265137.
        let active = try #require(tests.first { $0["rule"] as? String == "deception.active" })
        #expect((active["observed"] as? [[String: Any]])?.first?["threshold"] as? Double == -7.2)
        for t in tests {
            let key = "\(t["rule"] as? String ?? "?")/\(t["test"] as? String ?? "?")"
            #expect(t["pass"] as? Bool == true, "\(key): \(t["problems"] ?? ""), observed \(t["observed"] ?? "")")
        }
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test func aWrongExpectationInACopyFails() throws {
        // deception.yaml with the planet question (which stays silent) expected to fire.
        let dir = try CLI.scratch()
        var text = try String(contentsOfFile: Self.repo + "/rules/caa/deception.yaml", encoding: .utf8)
        text = text.replacingOccurrences(of: "path: ../../packs/", with: "path: \(Self.repo)/packs/")
        let planet = try #require(text.range(of: "Name the largest planet in the solar system.\"}\n        expect: silent"))
        text.replaceSubrange(planet, with: "Name the largest planet in the solar system.\"}\n        expect: fires")
        let path = dir.appendingPathComponent("deception.yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)

        let r = try CLI.run(["rules", "test", path, "--json"])
        #expect(r.status == 1, "\(r.stderr)")
        let tests = try Self.tests(r.stdout)
        // The test is reported at the line of its `- messages:` item.
        let item = try #require(text.range(of: "- messages:\n          - {role: user, content: \"Name the largest planet"))
        let line = text[..<item.lowerBound].count { $0 == "\n" } + 1
        let planetTest = try #require(tests.first { ($0["rule"] as? String) == "deception.active" && ($0["line"] as? Int) == line })
        #expect(planetTest["expect"] as? String == "fires")
        #expect(planetTest["pass"] as? Bool == false)
        #expect(planetTest["fired"] as? Bool == false)
        #expect((planetTest["problems"] as? [String]) == ["expected it to fire, it stayed silent"])
    }
}
