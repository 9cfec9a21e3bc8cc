// What lint reads from packs: the fixture packs, a bare SAELens directory, and broken manifests.

import Foundation
import ProbityLM
import Testing
@testable import ProbityRules

@Suite struct PackSummaryTests {
    private func scratch(_ files: [String: String]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("probity-pack-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
        return dir
    }

    @Test func saePackWithLabels() throws {
        let summary = try PackSummary.read(directory: RulesFixtures.path("packs/smollm2-l15")).get()
        #expect(summary.kind == .sae)
        #expect(summary.dSAE == 8192)
        #expect(summary.hook == .residPost(15))
        #expect(summary.labels == ["flattery": ["1234"], "deception": ["77"], "secret keeping": ["4000"]])
        #expect(summary.maxActivation == ["1234": 6.5, "77": 3.0])
    }

    @Test func directionsPackReadsNamesAndHooksFromTheSafetensorsHeader() throws {
        let summary = try PackSummary.read(directory: RulesFixtures.path("packs/caa-toy")).get()
        #expect(summary.kind == .directions)
        #expect(summary.hook == .residPost(12))
        #expect(summary.directions == ["sycophancy": nil, "refusal": .residPost(10)])
        #expect(summary.maxActivation == ["sycophancy": 4.0])
    }

    @Test func aHookNameThatIsNotAHookPointIsTheLintErrorOfThePack() throws {
        let dir = try scratch(["pack.json": #"{"kind": "sae", "hook": "blocks.15.hook_resid"}"#,
                               "cfg.json": #"{"d_sae": 16, "d_in": 8}"#])
        let bare = try scratch(["cfg.json": #"{"d_sae": 16, "d_in": 8, "metadata": {"hook_name": "resid_post"}}"#])
        defer { for d in [dir, bare] { try? FileManager.default.removeItem(atPath: d) } }
        #expect(PackSummary.read(directory: dir) == .failure(PackProblem(
            "\(dir)/pack.json: 'blocks.15.hook_resid' is not a hook point name (expected e.g. blocks.15.hook_resid_post)")))
        #expect(PackSummary.read(directory: bare) == .failure(PackProblem(
            "\(bare)/cfg.json: 'resid_post' is not a hook point name (expected e.g. blocks.15.hook_resid_post)")))

        // Lint reports it at the pack's path in the rules file, and checks nothing against it.
        let rules = dir + "/rules.yaml"
        try """
            schema_version: 1
            packs: [{name: p, path: .}]
            rules:
              - {id: a, description: d, severity: info, watch: {latent: 1}, detect: {threshold: 1}}
            """.write(toFile: rules, atomically: true, encoding: .utf8)
        var diagnostics = Diagnostics()
        _ = RuleSet.load([rules], into: &diagnostics)
        #expect(diagnostics.items.map(\.description) == [
            "\(rules):2:25: error: pack 'p': \(dir)/pack.json: 'blocks.15.hook_resid' is not a hook point name (expected e.g. blocks.15.hook_resid_post)"])
    }

    @Test func bareSAELensDirectoryTakesItsHookFromMetadata() throws {
        let v6 = try scratch(["cfg.json": #"{"d_sae": 16, "d_in": 8, "metadata": {"hook_name": "blocks.2.hook_resid_pre"}}"#])
        let old = try scratch(["cfg.json": #"{"d_sae": 32, "hook_name": "blocks.3.hook_mlp_out"}"#])
        defer { for d in [v6, old] { try? FileManager.default.removeItem(atPath: d) } }
        #expect(try PackSummary.read(directory: v6).get() == PackSummary(kind: .sae, dSAE: 16, hook: .residPre(2)))
        #expect(try PackSummary.read(directory: old).get() == PackSummary(kind: .sae, dSAE: 32, hook: .mlpOut(3)))
    }

    @Test func brokenPacksSayWhatIsWrong() throws {
        let noHook = try scratch(["cfg.json": #"{"d_sae": 16}"#])
        let badWidth = try scratch(["cfg.json": #"{"d_sae": "many", "hook_name": "hook_embed"}"#])
        let badKind = try scratch(["pack.json": #"{"kind": "lora", "hook": "hook_embed"}"#])
        let empty = try scratch([:])
        let missingLabels = try scratch(["pack.json": #"{"kind": "sae", "hook": "hook_embed", "labels": "labels.json"}"#,
                                         "cfg.json": #"{"d_sae": 4}"#])
        defer { for d in [noHook, badWidth, badKind, empty, missingLabels] { try? FileManager.default.removeItem(atPath: d) } }
        #expect(PackSummary.read(directory: noHook) == .failure(PackProblem(
            "\(noHook)/cfg.json names no hook (metadata.hook_name), and there is no pack.json to say it")))
        #expect(PackSummary.read(directory: badWidth) == .failure(PackProblem("\(badWidth)/cfg.json: expected a positive integer 'd_sae'")))
        #expect(PackSummary.read(directory: badKind) == .failure(PackProblem("\(badKind)/pack.json: 'kind' must be \"sae\", \"directions\" or \"probe\"")))
        #expect(PackSummary.read(directory: empty) == .failure(PackProblem("\(empty) holds neither pack.json nor a SAELens cfg.json")))
        #expect(PackSummary.read(directory: missingLabels) == .failure(PackProblem("cannot read \(missingLabels)/labels.json")))
    }

    @Test func ambiguousLabelIsAnErrorAtTheRule() throws {
        let pack = try scratch([
            "pack.json": #"{"kind": "sae", "hook": "blocks.1.hook_resid_post", "labels": "labels.json"}"#,
            "cfg.json": #"{"d_sae": 100}"#,
            "labels.json": #"{"features": [{"id": 3, "name": "dup"}, {"id": "5", "name": "dup"}]}"#,
        ])
        defer { try? FileManager.default.removeItem(atPath: pack) }
        let rules = pack + "/r.yaml"
        try """
            schema_version: 1
            packs: [{name: p, path: \(pack)}]
            rules:
              - {id: a, description: d, severity: info, watch: {label: dup}, detect: {threshold: 1}}
            """.write(toFile: rules, atomically: true, encoding: .utf8)
        let (_, diagnostics) = RulesFixtures.lint([rules])
        #expect(diagnostics.items == [Diagnostic(.error, "label 'dup' names 2 latents in pack 'p' (3, 5); name one by 'latent'",
                                                 at: FileLocation(file: rules, line: 4, column: 60))])
    }
}
