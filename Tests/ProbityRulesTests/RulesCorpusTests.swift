// The broken-rules corpus: each file under Tests/Fixtures/rules/broken must produce exactly the
// diagnostics its `# expect:` lines give, at those lines and columns. Valid files lint clean.

import Foundation
import Testing
@testable import ProbityRules

@Suite struct RulesCorpusTests {
    @Test func corpusCoversEveryKindOfMistake() {
        let expected = ["billion-laughs.yaml", "deep-nesting.yaml", "duplicate-key.yaml", "hook-not-in-model.yaml",
                        "hook-syntax.yaml", "missing-pack.yaml", "never-fires.yaml", "out-of-range.yaml",
                        "references.yaml", "schema-version.yaml", "syntax.yaml", "tests-block.yaml",
                        "thresholds.yaml", "triggers.yaml", "unknown-action.yaml", "unknown-key.yaml",
                        "unknown-label.yaml", "wrong-types.yaml"]
        #expect(RulesFixtures.brokenFiles() == expected)
    }

    @Test(arguments: RulesFixtures.brokenFiles())
    func brokenFileGivesItsExpectedDiagnostics(_ name: String) throws {
        let path = RulesFixtures.path("broken/" + name)
        let expected = try RulesFixtures.expectedLines(in: path)
        #expect(!expected.isEmpty, "\(name) has no # expect: lines")
        let (_, diagnostics) = RulesFixtures.lint([path])
        #expect(RulesFixtures.expectationLines(diagnostics) == expected)
        #expect(diagnostics.items.allSatisfy { $0.location.file == path })
    }

    @Test func duplicateIDsAcrossFilesPointAtTheSecond() {
        let a = RulesFixtures.path("dup-ids/a.yaml"), b = RulesFixtures.path("dup-ids/b.yaml")
        let (set, diagnostics) = RulesFixtures.lint([RulesFixtures.path("dup-ids")])
        #expect(diagnostics.items == [
            Diagnostic(.error, "duplicate rule id 'shared-id' (first at \(a):5:9)",
                       at: FileLocation(file: b, line: 10, column: 9)),
        ])
        #expect(set.rules.map(\.id) == ["shared-id", "other"])
    }

    @Test func validFilesLintClean() {
        let (set, diagnostics) = RulesFixtures.lint([RulesFixtures.path("valid")])
        #expect(diagnostics.items.isEmpty, "\(diagnostics.rendered())")
        #expect(set.rules.map(\.id) == ["flattery-watch", "sycophancy-steer", "deception-stop"])
    }

    @Test func loadCheckedThrowsEveryErrorAtOnce() throws {
        let range = RulesFixtures.path("broken/out-of-range.yaml"), label = RulesFixtures.path("broken/unknown-label.yaml")
        do {
            _ = try RuleSet.loadChecked([range, label])
            Issue.record("loaded broken rules")
        } catch {
            guard case .invalid(let all) = error else {
                Issue.record("expected .invalid, got \(error)")
                return
            }
            #expect(all.map(\.location) == [FileLocation(file: range, line: 13, column: 15), FileLocation(file: label, line: 11, column: 39)])
            #expect(error.description == """
                \(range):13:15: error: feature 9000 is out of range for pack 'smollm2-l15' (d_sae 8192)
                \(label):11:39: error: pack 'smollm2-l15' has no latent labelled 'flatery'
                    hint: did you mean 'flattery'?
                """)
        }
        let (set, warnings) = try RuleSet.loadChecked([RulesFixtures.path("broken/never-fires.yaml")])
        #expect(set.rules.map(\.id) == ["never"])
        #expect(warnings.count == 2)
        #expect(warnings.allSatisfy { $0.severity == .warning })
    }

    @Test func hookBeyondTheModelIsOnlyCheckedWithAModel() {
        let (_, diagnostics) = RulesFixtures.lint([RulesFixtures.path("broken/hook-not-in-model.yaml")], blocks: nil)
        #expect(diagnostics.items.isEmpty)
    }

    @Test func missingPathIsReported() {
        let (set, diagnostics) = RulesFixtures.lint(["/no/such/rules"])
        #expect(diagnostics.items == [Diagnostic(.error, "no such file or directory", at: .file("/no/such/rules"))])
        #expect(set.files.isEmpty)
    }

    /// Every shipped rules file (rules/ and each directory under it) lints clean against the
    /// committed packs, all loaded together (so rule ids are unique across them).
    @Test func exampleRulesLintClean() throws {
        let repository = URL(fileURLWithPath: RulesFixtures.directory).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().path
        let directories = ["rules", "rules/backdoor", "rules/caa", "rules/demo", "rules/measured", "rules/probes", "rules/steering"]
        let (set, diagnostics) = RulesFixtures.lint(directories.map { repository + "/" + $0 })
        #expect(set.files.map { URL(fileURLWithPath: $0.path).pathComponents.suffix(2).joined(separator: "/") } == [
            "rules/deception.yaml", "rules/secret-keeping.yaml", "rules/sycophancy.yaml",
            "backdoor/defection.yaml", "backdoor/planted-code.yaml", "backdoor/steer-out.yaml",
            "caa/deception.yaml", "caa/secret-keeping.yaml", "caa/sycophancy.yaml", "demo/gold.yaml",
            "measured/deception.yaml", "measured/secret-keeping.yaml", "measured/sycophancy.yaml",
            "probes/backdoor-tokens.yaml", "probes/backdoor.yaml", "probes/deception-tokens.yaml", "probes/deception.yaml",
            "probes/secret-keeping-tokens.yaml", "probes/secret-keeping.yaml", "probes/sycophancy-stated.yaml",
            "probes/sycophancy-tokens.yaml", "probes/sycophancy.yaml",
            "steering/sycophancy-project-out-l18.yaml", "steering/sycophancy-subtract-l18.yaml",
            "steering/sycophancy-subtract-response-l18.yaml",
        ])
        #expect(set.rules.count == 27)
        // No directory under rules/ is left out of this test.
        let listed = try FileManager.default.contentsOfDirectory(atPath: repository + "/rules")
            .filter { var d: ObjCBool = false; return FileManager.default.fileExists(atPath: repository + "/rules/" + $0, isDirectory: &d) && d.boolValue }
        // Rules made for another model (rules/MODEL, run by a suite's `models:`) share ids with these
        // and are linted apart, against that model's blocks.
        #expect(Set(listed.map { "rules/" + $0 }) == Set(directories.dropFirst()).union(["rules/gemma3-270m"]))
        #expect(diagnostics.items.isEmpty, "\(diagnostics.items)")

        let (gemma, gemmaDiagnostics) = RulesFixtures.lint([repository + "/rules/gemma3-270m"], blocks: 18)
        #expect(gemma.files.map { URL(fileURLWithPath: $0.path).lastPathComponent } == ["backdoor-tokens.yaml", "caa.yaml", "sae.yaml", "secret-keeping-tokens.yaml"])
        #expect(gemma.rules.count == 7)
        #expect(gemmaDiagnostics.items.isEmpty, "\(gemmaDiagnostics.items)")
    }
}
