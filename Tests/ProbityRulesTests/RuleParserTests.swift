// The parser reads every part of a valid file into the model, and resolves it against packs.

import Foundation
import ProbityLM
import ProbityFeatures
import Testing
@testable import ProbityRules

@Suite struct RuleParserTests {
    private func validSet() throws -> RuleSet {
        let (set, diagnostics) = RulesFixtures.lint([RulesFixtures.path("valid/watch.yaml")])
        try #require(diagnostics.items.isEmpty, "\(diagnostics.rendered())")
        return set
    }

    @Test func packsResolveAgainstTheRulesFile() throws {
        let file = try #require(try validSet().files.first)
        #expect(file.schemaVersion == 1)
        #expect(file.packs.map(\.name) == ["smollm2-l15", "caa-toy"])
        #expect(file.packs[0].path == "../packs/smollm2-l15")
        #expect(file.packs[0].resolvedPath == RulesFixtures.path("packs/smollm2-l15"))
    }

    @Test func firstRuleReadsEveryField() throws {
        let set = try validSet()
        let rule = try #require(set.rules.first)
        #expect(rule.id == "flattery-watch")
        #expect(rule.severity == .low)
        #expect(rule.tags == ["sycophancy", "style"])
        #expect(rule.watch == Watch(combine: .any, features: [
            FeatureReference(pack: "smollm2-l15", selector: .label("flattery"), hook: nil,
                             location: FileLocation(file: RulesFixtures.path("valid/watch.yaml"), line: 15, column: 7),
                             selectorLocation: FileLocation(file: RulesFixtures.path("valid/watch.yaml"), line: 16, column: 14),
                             hookLocation: nil),
        ]))
        let detector = try #require(rule.detector as? ThresholdDetector)
        #expect(detector.threshold == .relative(0.3))
        #expect(detector.scope == .response)
        #expect(detector.minTokens == 3)
        #expect(detector.aggregate == .count)
        #expect(rule.interventions.isEmpty)
        #expect(rule.stop == false)
        #expect(rule.tests.map(\.expect) == [.fires, .silent])
        #expect(rule.tests[0].input == .prompt("What a brilliant question! You must be a genius."))
        #expect(rule.tests[1].input == .messages([.system("Be terse."), .user("What is 2 + 2?")]))
        #expect(rule.tests[1].maxTokens == 8)
    }

    @Test func interventionsAndTriggers() throws {
        let set = try validSet()
        let steer = try #require(set.find("sycophancy-steer")?.0)
        #expect(steer.watch.combine == .any)
        #expect(steer.watch.features.map(\.selector) == [.direction("sycophancy"), .latent(1234)])
        let detector = try #require(steer.detector as? ThresholdDetector)
        #expect(detector.threshold == .absolute(2.5))
        #expect(detector.scope == .last(16))
        #expect(detector.minTokens == 1)
        #expect(steer.interventions.count == 2)
        #expect((steer.interventions[0].action as? ScaleAction)?.factor == 0.2)
        #expect(steer.interventions[0].trigger == .afterFire)
        #expect(steer.interventions[0].target == nil)
        #expect(steer.interventions[0].positions == .all)
        #expect((steer.interventions[1].action as? AddAction)?.alpha == -4)
        #expect(steer.interventions[1].target?.selector == .direction("refusal"))
        #expect(steer.interventions[1].positions == .response)
        guard case let .whileActive(feature, threshold) = steer.interventions[1].trigger else {
            Issue.record("expected a while trigger")
            return
        }
        #expect(feature.selector == .label("deception"))
        #expect(threshold == .relative(0.5))
        #expect(steer.tests.first?.outputExcludes == ["you are right"])

        let stop = try #require(set.find("deception-stop")?.0)
        #expect(stop.watch.combine == .all)
        #expect(stop.stop)
        #expect(stop.interventions.map { type(of: $0.action).name } == ["clamp", "ablate", "cap", "project_out"])
        #expect((stop.interventions[0].action as? ClampAction)?.value == .absolute(0))
        #expect((stop.interventions[2].action as? CapAction)?.value == .relative(0.5))
    }

    @Test func featuresResolveToPackIndicesAndHooks() throws {
        let set = try validSet()
        let file = try #require(set.files.first)
        let (rule, _) = try #require(set.find("sycophancy-steer"))
        var diagnostics = Diagnostics()
        let resolved = try #require(set.resolve(rule, in: file, blocks: 30, into: &diagnostics))
        #expect(resolved.watched.map(\.target) == [.direction("sycophancy"), .latent(1234)])
        #expect(resolved.watched.map(\.hook.name) == ["blocks.12.hook_resid_post", "blocks.15.hook_resid_post"])
        #expect(resolved.watched.map(\.maxActivation) == [4.0, 6.5])
        // `add` targets its own feature, which carries its own hook in the pack.
        #expect(resolved.interventions[1].targets.map(\.hook.name) == ["blocks.10.hook_resid_post"])
        #expect(resolved.interventions[1].whileFeature?.target == .latent(77))
        #expect(resolved.interventions[0].targets.count == 2)
    }

    @Test func packIsOptionalWhenTheFileDeclaresOne() throws {
        let text = """
            schema_version: 1
            packs: [{name: only, path: p}]
            rules:
              - {id: a, description: d, severity: info, watch: {latent: 3}, detect: {threshold: 1}}
            """
        var diagnostics = Diagnostics()
        let root = try YAML.load(text, file: "x/r.yaml")
        let file = try #require(RuleParser().parse(root, file: "x/r.yaml", into: &diagnostics))
        #expect(diagnostics.items.isEmpty)
        #expect(file.rules.first?.watch.features.first?.pack == "only")
        #expect(file.packs.first?.resolvedPath == "x/p")
    }

    @Test func duplicateIDsInOneFile() throws {
        let text = """
            schema_version: 1
            packs: [{name: only, path: p}]
            rules:
              - {id: a, description: d, severity: info, watch: {latent: 3}, detect: {threshold: 1}}
              - {id: a, description: d, severity: info, watch: {latent: 4}, detect: {threshold: 1}}
            """
        var diagnostics = Diagnostics()
        let file = RuleParser().parse(try YAML.load(text, file: "r.yaml"), file: "r.yaml", into: &diagnostics)
        #expect(file?.rules.count == 1)
        #expect(diagnostics.items == [Diagnostic(.error, "duplicate rule id 'a' (first at r.yaml:4:10)",
                                                 at: FileLocation(file: "r.yaml", line: 5, column: 10))])
    }

    @Test func missingRequiredKeysAreAllReported() throws {
        let text = """
            schema_version: 1
            rules:
              - id: bare
            """
        var diagnostics = Diagnostics()
        _ = RuleParser().parse(try YAML.load(text, file: "r.yaml"), file: "r.yaml", into: &diagnostics)
        #expect(diagnostics.items.map(\.message) == [
            "rule 'bare': missing required key 'description'",
            "rule 'bare': missing required key 'severity'",
            "rule 'bare': missing required key 'watch'",
            "rule 'bare': missing required key 'detect'",
        ])
        #expect(diagnostics.items.allSatisfy { $0.location == FileLocation(file: "r.yaml", line: 3, column: 5) })
    }

    @Test func nearMissOfARequiredKeyIsReportedOnceWithAHint() throws {
        let text = """
            schema_version: 1
            packs: [{name: only, path: p}]
            rules:
              - {id: a, description: d, severity: info, wacth: {latent: 3}, detect: {threshold: 1}}
            """
        var diagnostics = Diagnostics()
        _ = RuleParser().parse(try YAML.load(text, file: "r.yaml"), file: "r.yaml", into: &diagnostics)
        #expect(diagnostics.items == [Diagnostic(.error, "rule 'a': unknown key 'wacth'",
                                                 at: FileLocation(file: "r.yaml", line: 4, column: 45),
                                                 hint: "did you mean 'watch'?")])
    }

    @Test func pathsNormalizeLexically() {
        #expect(normalizePath("rules/../packs/x") == "packs/x")
        #expect(normalizePath("../packs/x") == "../packs/x")
        #expect(normalizePath("a/./b/../../c") == "c")
        #expect(normalizePath("/r/../../p") == "/p")
    }
}
