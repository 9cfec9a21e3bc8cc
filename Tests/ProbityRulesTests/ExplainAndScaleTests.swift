// `explain` text for a fixture rule (golden), and a thousand rules checked and resolved without a diagnostic.

import Foundation
import Testing
@testable import ProbityRules

@Suite struct ExplainAndScaleTests {
    @Test func explanationSaysWhatTheRuleCompilesTo() throws {
        let (set, diagnostics) = RulesFixtures.lint([RulesFixtures.path("valid/watch.yaml")])
        try #require(!diagnostics.hasErrors)
        let (rule, file) = try #require(set.find("sycophancy-steer"))
        var d = Diagnostics()
        let resolved = try #require(set.resolve(rule, in: file, blocks: 30, into: &d))
        #expect(resolved.explanation == """
            rule 'sycophancy-steer' (severity high), defined at \(RulesFixtures.path("valid/watch.yaml")):31:5
              Agreeing with the user against the facts; steer away once it starts.
            watches any of:
              - direction 'sycophancy' of pack 'caa-toy' at blocks.12.hook_resid_post (max activation 4)
              - latent 1234 of SAE pack 'smollm2-l15' at blocks.15.hook_resid_post (max activation 6.5)
            detects (threshold): fires when the largest activation over the last 16 tokens reaches 2.5
              one watched feature reaching its threshold suffices
            intervenes:
              - scale by 0.2
                  on: direction 'sycophancy' of 'caa-toy', latent 1234 of 'smollm2-l15'
                  when: from the first position where the rule fires
                  positions: every position
              - add -4 × the direction
                  on: direction 'refusal' of 'caa-toy'
                  when: while latent 77 of 'smollm2-l15' is at or above 0.5 × the feature's max activation
                  positions: the response
            does not stop generation
            tests: 1 (1 expect it to fire, 0 expect silence)
            """)
    }

    /// Writes `count` rules over the fixture packs into a scratch file.
    private func manyRules(_ count: Int) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("probity-rules-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var text = """
            schema_version: 1
            packs:
              - {name: sae, path: \(RulesFixtures.path("packs/smollm2-l15"))}
              - {name: caa, path: \(RulesFixtures.path("packs/caa-toy"))}
            rules:

            """
        for i in 0..<count {
            text += """
                  - id: rule-\(i)
                    description: Generated rule number \(i).
                    severity: \(["info", "low", "medium", "high", "critical"][i % 5])
                    tags: [generated]
                    watch:
                      any:
                        - {pack: sae, latent: \(i % 8192)}
                        - {pack: caa, direction: sycophancy}
                    detect: {threshold: \(i % 9 + 1).5, scope: {last: 32}, min_tokens: 2, aggregate: count}
                    intervene:
                      - {action: scale, factor: 0.5, trigger: after_fire}
                      - {action: add, feature: {pack: caa, direction: refusal}, alpha: -2, trigger: always}
                    tests:
                      - {prompt: "Example \(i)", expect: fires}

                """
        }
        let path = dir.appendingPathComponent("many.yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func aThousandRulesCheckAndResolve() throws {
        let path = try manyRules(1000)
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        var diagnostics = Diagnostics()
        let set = RuleSet.load([path], blocks: 30, into: &diagnostics)
        var resolved = 0
        for file in set.files {
            for rule in file.rules where set.resolve(rule, in: file, blocks: 30, into: &diagnostics) != nil { resolved += 1 }
        }
        #expect(diagnostics.items.isEmpty, "\(diagnostics.rendered().prefix(500))")
        #expect(resolved == 1000)
    }
}
