// A rule's recorded validity: read strictly from `validity:`, and `rules lint`'s warning for a rule
// of severity medium or higher without one.

import Testing
@testable import ProbityRules

@Suite struct ValidityTests {
    static let digest = String(repeating: "ab", count: 32)

    static func parse(_ rules: String) throws -> (RuleFile?, Diagnostics) {
        let text = """
            schema_version: 1
            packs: [{name: only, path: p}]
            rules:
            \(rules)
            """
        var diagnostics = Diagnostics()
        let file = RuleParser().parse(try YAML.load(text, file: "r.yaml"), file: "r.yaml", into: &diagnostics)
        return (file, diagnostics)
    }

    @Test func readsTheMeasuredNumbers() throws {
        let (file, diagnostics) = try Self.parse("""
              - id: a
                description: d
                severity: high
                watch: {latent: 3}
                detect: {threshold: 1}
                validity: {auroc: 0.91, tpr: 0.8, fpr: 0.05, benign_fpr: 0, data: \(Self.digest), n: 250}
            """)
        #expect(diagnostics.isEmpty)
        let v = try #require(file?.rules.first?.validity)
        #expect(v.auroc == 0.91 && v.tpr == 0.8 && v.fpr == 0.05 && v.benignFPR == 0 && v.data == Self.digest && v.n == 250)
        #expect(v.location.line == 9)
    }

    @Test func badValuesAreErrorsAtTheirKey() throws {
        let (file, diagnostics) = try Self.parse("""
              - id: a
                description: d
                severity: high
                watch: {latent: 3}
                detect: {threshold: 1}
                validity: {auroc: 1.2, tpr: 0.8, fpr: "low", benign_fpr: 0, data: abc, n: 0, note: x}
            """)
        #expect(file?.rules.isEmpty == true)
        let messages = diagnostics.items.map(\.message)
        #expect(messages.contains("rule 'a': validity: 'auroc' must be between 0 and 1, found 1.2"))
        #expect(messages.contains { $0.hasPrefix("rule 'a': validity: 'fpr'") })
        #expect(messages.contains("rule 'a': validity: 'data' must be the SHA-256 `probity eval` prints (64 lowercase hex digits), found 'abc'"))
        #expect(messages.contains("rule 'a': validity: 'n' must be at least 1, found 0"))
        #expect(messages.contains("rule 'a': validity: unknown key 'note'"))
        #expect(diagnostics.items.allSatisfy { $0.location.line == 9 })
    }

    @Test func lintWarnsOnlyAboutUnmeasuredRulesThatCanFailCI() throws {
        let (file, parseDiagnostics) = try Self.parse("""
              - {id: unmeasured, description: d, severity: medium, watch: {latent: 3}, detect: {threshold: 1}}
              - {id: quiet, description: d, severity: low, watch: {latent: 3}, detect: {threshold: 1}}
              - id: measured
                description: d
                severity: critical
                watch: {latent: 3}
                detect: {threshold: 1}
                validity: {auroc: 0.95, tpr: 0.9, fpr: 0.02, benign_fpr: 0.01, data: \(Self.digest), n: 300}
            """)
        #expect(parseDiagnostics.isEmpty)
        let set = RuleSet(files: [try #require(file)], packs: [:])
        var diagnostics = Diagnostics()
        set.checkValidity(into: &diagnostics)
        #expect(diagnostics.items.map(\.message) == ["rule 'unmeasured' (severity medium) records no validity: its findings are unmeasured"])
        #expect(diagnostics.items.first?.severity == .warning && diagnostics.items.first?.location.line == 4)
    }

    /// A calibrated validity records the threshold and the calibration data's digest, together, and
    /// the threshold must be the rule's own: numbers measured at another threshold describe another rule.
    @Test func calibratedValidityNamesItsThresholdAndItMustBeTheRules() throws {
        let other = String(repeating: "cd", count: 32)
        let (file, diagnostics) = try Self.parse("""
              - id: a
                description: d
                severity: high
                watch: {latent: 3}
                detect: {threshold: 11.862}
                validity: {auroc: 0.78, tpr: 0.3, fpr: 0.3, benign_fpr: 0.05, data: \(Self.digest), n: 408, threshold: 11.862, calibration: \(other)}
            """)
        #expect(diagnostics.isEmpty, "\(diagnostics.items)")
        let v = try #require(file?.rules.first?.validity)
        #expect(v.threshold == 11.862 && v.calibration == other)

        let (bad, badDiagnostics) = try Self.parse("""
              - id: a
                description: d
                severity: high
                watch: {latent: 3}
                detect: {threshold: 2}
                validity: {auroc: 0.78, tpr: 0.3, fpr: 0.3, benign_fpr: 0.05, data: \(Self.digest), n: 408, threshold: 11.862, calibration: \(other)}
              - id: b
                description: d
                severity: high
                watch: {latent: 3}
                detect: {threshold: 2}
                validity: {auroc: 0.78, tpr: 0.3, fpr: 0.3, benign_fpr: 0.05, data: \(Self.digest), n: 408, threshold: 2}
              - id: c
                description: d
                severity: high
                watch: {latent: 3}
                detect: {threshold: 2}
                validity: {auroc: 0.78, tpr: 0.3, fpr: 0.3, benign_fpr: 0.05, data: \(Self.digest), n: 408, threshold: 2, calibration: ABC}
            """)
        #expect(bad?.rules.isEmpty == true)
        let messages = badDiagnostics.items.map(\.message)
        #expect(messages.contains("rule 'a': validity was measured at threshold 11.862 (calibrated), but 'detect.threshold' is 2.0: "
                                  + "set the threshold to the calibrated one, or record the validity measured at 2.0"), "\(messages)")
        #expect(messages.contains("rule 'b': validity: 'threshold' and 'calibration' go together (the calibrated threshold and the digest of the data that chose it)"))
        #expect(messages.contains("rule 'c': validity: 'calibration' must be the SHA-256 `probity eval` prints (64 lowercase hex digits), found 'ABC'"))
    }
}
