// `probity rules lint` and `probity rules explain`, run through the real binary on the rules
// fixtures (Tests/Fixtures/rules). Text diagnostics go to standard error, JSON to standard output.

import Foundation
import Testing

@Suite struct RulesCLITests {
    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/rules").path

    private func fixture(_ relative: String) -> String { Self.fixtures + "/" + relative }

    @Test func cleanLintExitsZero() throws {
        let r = try CLI.run(["rules", "lint", fixture("valid")])
        #expect(r.status == 0)
        #expect(r.stdout == "3 rules in 1 file: ok\n")
        #expect(r.stderr == "")
    }

    @Test func brokenLintExitsTwoWithCompilerStyleLines() throws {
        let path = fixture("broken/unknown-key.yaml")
        let r = try CLI.run(["rules", "lint", path])
        #expect(r.status == 2)
        #expect(r.stderr == """
            \(path):13:7: error: rule 'typo': detect: unknown key 'treshold'
                hint: did you mean 'threshold'?
            1 error, 0 warnings

            """)
        #expect(r.stdout == "")
    }

    @Test func everyDiagnosticOfEveryFileAtOnce() throws {
        let r = try CLI.run(["rules", "lint", fixture("broken/out-of-range.yaml"), fixture("broken/unknown-label.yaml"),
                             fixture("broken/syntax.yaml")])
        #expect(r.status == 2)
        let lines = r.stderr.split(separator: "\n").map(String.init)
        #expect(lines.contains("\(fixture("broken/out-of-range.yaml")):13:15: error: feature 9000 is out of range for pack 'smollm2-l15' (d_sae 8192)"))
        #expect(lines.contains("\(fixture("broken/unknown-label.yaml")):11:39: error: pack 'smollm2-l15' has no latent labelled 'flatery'"))
        #expect(lines.contains { $0.hasPrefix("\(fixture("broken/syntax.yaml")):12:10: error: YAML syntax:") })
        // The two rules that parse are of severity medium or higher and record no validity.
        #expect(lines.contains { $0.hasSuffix("records no validity: its findings are unmeasured") })
        #expect(lines.last == "3 errors, 2 warnings")
    }

    @Test func jsonDiagnosticsOnStandardOutput() throws {
        let path = fixture("broken/unknown-action.yaml")
        let r = try CLI.run(["rules", "lint", "--json", path])
        #expect(r.status == 2)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["errors"] as? Int == 1)
        let first = try #require((object["diagnostics"] as? [[String: Any]])?.first)
        #expect(first["file"] as? String == path)
        #expect(first["line"] as? Int == 14)
        #expect(first["column"] as? Int == 17)
        #expect(first["severity"] as? String == "error")
        #expect(first["message"] as? String == "rule 'act': unknown action 'clamps' (registered: ablate, add, cap, clamp, project_out, scale)")
        #expect(first["hint"] as? String == "did you mean 'clamp'?")

        let clean = try CLI.run(["rules", "lint", "--json", fixture("valid")])
        #expect(clean.status == 0)
        let cleanObject = try #require(try JSONSerialization.jsonObject(with: Data(clean.stdout.utf8)) as? [String: Any])
        #expect((cleanObject["diagnostics"] as? [Any])?.isEmpty == true)
    }

    @Test func warningsAloneExitZero() throws {
        let r = try CLI.run(["rules", "lint", fixture("broken/never-fires.yaml")])
        #expect(r.status == 0)
        #expect(r.stderr.contains(":12:13: warning: rule 'never' can never fire: min_tokens 5 is more than the 2 tokens in its scope"))
        #expect(r.stdout == "1 rule in 1 file: ok\n")
    }

    @Test func hookCheckedAgainstTheModel() throws {
        let path = fixture("broken/hook-not-in-model.yaml")
        let without = try CLI.run(["rules", "lint", path])
        #expect(without.status == 0)
        let with = try CLI.run(["rules", "lint", "--model", "default", path])
        #expect(with.status == 2)
        #expect(with.stderr.contains("\(path):13:56: error: hook point 'blocks.40.hook_resid_post' does not exist in the model (30 blocks: 0-29)"))
    }

    @Test func billionLaughsFailsFastWithAClearError() throws {
        let start = Date()
        let r = try CLI.run(["rules", "lint", fixture("broken/billion-laughs.yaml")])
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(r.status == 2)
        #expect(r.stderr.contains(":6:12: error: alias '*e' expands the document past 250000 nodes"))
    }

    @Test func missingPathIsBadInput() throws {
        let r = try CLI.run(["rules", "lint", "/no/such/rules"])
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix("/no/such/rules: error: no such file or directory\n"))
    }

    @Test func explainPrintsWhatTheRuleCompilesTo() throws {
        let r = try CLI.run(["rules", "explain", "flattery-watch", fixture("valid")])
        #expect(r.status == 0)
        #expect(r.stdout.contains("watches:\n  - latent 1234 ('flattery') of SAE pack 'smollm2-l15' at blocks.15.hook_resid_post (max activation 6.5)\n"))
        #expect(r.stdout.contains("detects (threshold): fires when at least 3 tokens of the response reach 0.3 × the feature's max activation\n  = 1.95 for latent 1234 of 'smollm2-l15'\n"))
        #expect(r.stdout.contains("intervenes: no (observes only)\n"))
    }

    @Test func explainUnknownRuleListsTheKnownOnes() throws {
        let r = try CLI.run(["rules", "explain", "nope", fixture("valid")])
        #expect(r.status == 2)
        #expect(r.stderr == "probity: error: no rule 'nope' in \(fixture("valid")) (rules: flattery-watch, sycophancy-steer, deception-stop)\n")
    }

    @Test func explainSuggestsANearID() throws {
        let r = try CLI.run(["rules", "explain", "flatery-watch", fixture("valid")])
        #expect(r.status == 2)
        #expect(r.stderr.hasSuffix("; did you mean 'flattery-watch'?\n"))
    }

    @Test func explainRefusesBrokenRules() throws {
        let r = try CLI.run(["rules", "explain", "range", fixture("broken/out-of-range.yaml")])
        #expect(r.status == 2)
        #expect(r.stderr.contains("error: feature 9000 is out of range"))
    }
}
