// `effects: {tokens: [...]}` (docs/rules.md, "Effects"): its shape is checked by lint, and compiling
// against the default model turns each token into its vocabulary id or reports, at the token's
// line and column, the pieces a text that is not one token splits into.

import Foundation
import ProbityLM
import ProbityRules
import Testing

@Suite(.serialized) struct EffectTokensTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// A rules file over the committed deception pack with one steering rule whose `effects` is `effects`.
    static func file(_ effects: String, intervene: Bool = true) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("probity-effects-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("rules.yaml").path
        try """
        schema_version: 1
        packs:
          - {name: caa-deception, path: \(repo)/packs/caa-deception}
        rules:
          - id: steer
            description: d
            severity: low
            watch: {direction: deception}
            detect: {threshold: 0}
        \(intervene ? "    intervene: [{action: add, alpha: -2, trigger: always}]\n" : "")    effects: \(effects)

        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func lint(_ path: String) -> [String] {
        var diagnostics = Diagnostics()
        _ = RuleSet.load([path], into: &diagnostics)
        return diagnostics.sorted.map { "\($0.location.line):\($0.location.column): \($0.severity.rawValue): \($0.message)" }
    }

    @Test func lintChecksTheShape() throws {
        #expect(Self.lint(try Self.file(#"{tokens: [" Yes", " No"]}"#)) == [])
        #expect(Self.lint(try Self.file("{tokens: []}")) == ["11:23: error: rule 'steer': effects: 'tokens' is empty"])
        #expect(Self.lint(try Self.file("{tokens: [1]}")) == ["11:24: error: rule 'steer': effects: 'tokens': expected a string, found integer 1"])
        #expect(Self.lint(try Self.file(#"{tokens: [""]}"#)) == ["11:24: error: rule 'steer': effects: a token cannot be empty"])
        let twice = try Self.file(#"{tokens: [" Yes", " Yes"]}"#)
        #expect(Self.lint(twice) == [#"11:32: warning: rule 'steer': effects: token " Yes" is listed twice (first at "# + twice + ":11:24)"])
        #expect(Self.lint(try Self.file("{tokns: [a]}")) == ["11:15: error: rule 'steer': effects: unknown key 'tokns'"])
        #expect(Self.lint(try Self.file(#"{tokens: [" Yes"]}"#, intervene: false))
            == ["10:14: warning: rule 'steer': 'effects' names tokens but the rule does not intervene, so no effect is measured"])
    }

    @Test func compilingAgainstTheModelResolvesEachTokenOrSaysWhatItSplitsInto() throws {
        let loaded = try LoadedModel.load("default")
        let good = try CompiledRules.compile(files: [try Self.file(#"{tokens: [" Yes", " No"]}"#)], model: loaded)
        let tokens = try #require(good.rules.first?.effectTokens)
        #expect(tokens.map(\.text) == [" Yes", " No"])
        #expect(tokens.map(\.id) == [" Yes", " No"].map { loaded.tokenizer.encode($0, addSpecial: false, parseSpecial: false).first ?? -1 })
        #expect(tokens.allSatisfy { (try? loaded.tokenizer.piece($0.id)) == $0.text })

        let bad = try Self.file(#"{tokens: [" Yes", " Yes!"]}"#)
        #expect {
            _ = try CompiledRules.compile(files: [bad], model: loaded)
        } throws: { error in
            guard case RulesError.invalid(let found) = error, found.count == 1, let d = found.first else { return false }
            return d.location == FileLocation(file: bad, line: 11, column: 32)
                && d.message == #"rule 'steer': effects: token " Yes!" is not one token of the model's vocabulary: it splits into 2 tokens [" Yes", "!"]"#
        }
        // Without a tokenizer the tokens cannot be checked: an error, never a silent skip.
        #expect(throws: RulesError.self) {
            _ = try CompiledRules.compile(files: [try Self.file(#"{tokens: [" Yes"]}"#)], model: loaded.model.info,
                                          modelPath: loaded.path, modelName: nil)
        }
    }
}
