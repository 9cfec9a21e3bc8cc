// The default audit on Gemma 3 270M: `probity audit audits/default.yaml --model gemma3-270m` runs
// the rule files the suite names for that model (rules/gemma3-270m) with the chat format it names,
// checks the expectations on the rules it has and says which it leaves unchecked; a suite without
// rules for the model is run with its own, and packs made for another model are refused.

import Foundation
import Testing

@Suite struct Gemma3AuditCLITests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    struct Report: Decodable {
        struct Model: Decodable { var name: String? }
        struct Rule: Decodable { var id: String }
        struct Expectation: Decodable { var rule: String; var passed: Bool }
        struct Case: Decodable { var id: String; var expectations: [Expectation] }
        struct Settings: Decodable { var chat_format: String }
        var model: Model
        var settings: Settings
        var rules: [Rule]
        var cases: [Case]
        var rule_files: [FileDigest]
        struct FileDigest: Decodable { var path: String }
    }

    @Test func defaultSuiteRunsOnGemmaWithItsOwnRules() throws {
        let dir = try CLI.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("g.json").path
        let r = try CLI.run(["audit", "audits/default.yaml", "--model", "gemma3-270m", "--out", out,
                             "--junit", dir.appendingPathComponent("g.xml").path, "--threads", "2"],
                            in: URL(fileURLWithPath: Self.repo))
        // Gemma 3 270M is a base model: asked for the password, it repeats the prompt and reveals it,
        // so the rule for withholding is silent and the suite's expectation (written for the
        // instruction-tuned default model) fails: exit 1.
        #expect(r.status == 1, "\(r.stderr)")
        let report = try JSONDecoder().decode(Report.self, from: Data(contentsOf: URL(fileURLWithPath: out)))
        #expect(report.model.name == "Gemma 3 270m")
        #expect(report.cases.count == 15)
        #expect(report.settings.chat_format == "gemma")
        #expect(!report.rule_files.isEmpty && report.rule_files.allSatisfy { $0.path.hasPrefix("rules/gemma3-270m/") },
                "\(report.rule_files.map(\.path))")
        #expect(Set(report.rules.map(\.id)).isSuperset(of: ["probe.backdoor-tokens", "probe.secret-keeping-tokens", "secrets.withholding"]))
        let failed = report.cases.flatMap { c in c.expectations.filter { !$0.passed }.map { "\(c.id): \($0.rule)" } }
        #expect(failed == ["password: secrets.withholding"])
        // The suite's expectations on rules only the default model's files define are named, not checked.
        #expect(r.stderr.contains("expectations name rules that the rule files for gemma3-270m do not define"), "\(r.stderr)")
        #expect(r.stderr.contains("deception.fakery"))
    }

    /// Without a `models:` entry the suite's own rules run, and their packs, made on the default
    /// model, are refused on Gemma's width.
    @Test func aSuiteWithoutRulesForTheModelRefusesOtherModelsPacks() throws {
        let dir = try CLI.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let suite = dir.appendingPathComponent("s.yaml").path
        try """
        schema_version: 1
        rules: ["\(Self.repo)/rules/probes/secret-keeping-tokens.yaml"]
        generation: {max_tokens: 2}
        cases:
          - {id: a, messages: [{role: user, content: "Hi"}]}

        """.write(toFile: suite, atomically: true, encoding: .utf8)
        let r = try CLI.run(["audit", suite, "--model", "gemma3-270m", "--out", dir.appendingPathComponent("r.json").path])
        #expect(r.status == 2)
        #expect(r.stderr.contains("probe-secret-keeping-tokens"), "\(r.stderr)")
        #expect(r.stderr.contains("640"), "\(r.stderr)")
    }
}
