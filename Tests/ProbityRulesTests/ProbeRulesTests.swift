// Rules watching a probe: `{probe: NAME}` resolved by lint against the pack, wrong references and
// edits of a probe as errors at their line, `rules explain`, and the compiled detection reading the
// probe's logit w·x + b, whose running mean over the response is the probe on the prefix's mean activation.

import Foundation
import ProbityFeatures
import Testing
@testable import ProbityLM
@testable import ProbityRules

private let model = ModelInfo(architecture: "llama", blockCount: 2, width: 4, vocabularySize: 16, contextLength: 64)
private let block1 = HookPoint.residPost(1)
private let probe = Probe(name: "lies", point: block1, weights: [1, -2, 0.5, 0], bias: -0.25)

/// A scratch directory holding the probe pack `probe-lies` and a directions pack `dirs`.
private func makePacks() throws -> URL {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("probity-probe-rules-\(UUID().uuidString)")
    try FeaturePack.writeProbe(probe, to: root.appendingPathComponent("probe-lies").path, modelName: nil,
                               modelSHA256: nil, provenance: ["method": "test"])
    let dirs = root.appendingPathComponent("dirs").path
    try FileManager.default.createDirectory(atPath: dirs, withIntermediateDirectories: true)
    try FeaturePack.writeDirections([Direction(name: "d1", point: block1, vector: [1, 0, 0, 0])], to: dirs + "/directions.safetensors")
    try PackManifest(name: "dirs", kind: .directions, modelName: nil, modelSHA256: nil, hook: block1.name, labels: nil,
                     directions: "directions.safetensors").jsonData().write(to: URL(fileURLWithPath: dirs + "/pack.json"))
    return root
}

private func rulesFile(_ rules: String) throws -> String {
    let root = try makePacks()
    let path = root.appendingPathComponent("rules.yaml").path
    try ("""
        schema_version: 1
        packs:
          - {name: p, path: probe-lies}
          - {name: dirs, path: dirs}
        rules:

        """ + rules).write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

private let watching = """
      - id: lies
        description: The probe's mean over the response.
        severity: info
        watch: {pack: p, probe: lies}
        detect: {threshold: 0.5, scope: response, aggregate: mean}

    """

@Suite struct ProbeRulesTests {
    @Test func lintResolvesAProbe() throws {
        let (set, diagnostics) = RulesFixtures.lint([try rulesFile(watching)], blocks: 2)
        #expect(diagnostics.items.isEmpty, "\(diagnostics.items)")
        let (rule, file) = try #require(set.find("lies"))
        var d = Diagnostics()
        let resolved = try #require(set.resolve(rule, in: file, blocks: 2, into: &d))
        #expect(resolved.watched.first?.target == .probe("lies") && resolved.watched.first?.hook == block1)
        #expect(resolved.explanation.contains("probe 'lies' of pack 'p' at blocks.1.hook_resid_post"), "\(resolved.explanation)")
    }

    @Test func wrongReferencesAndEditsAreErrors() throws {
        let text = """
              - id: wrong-name
                description: d
                severity: info
                watch: {pack: p, probe: lie}
                detect: {threshold: 0}
              - id: as-direction
                description: d
                severity: info
                watch: {pack: p, direction: lies}
                detect: {threshold: 0}
              - id: probe-of-directions
                description: d
                severity: info
                watch: {pack: dirs, probe: d1}
                detect: {threshold: 0}
              - id: edits-probe
                description: d
                severity: info
                watch: {pack: p, probe: lies}
                detect: {threshold: 0}
                intervene:
                  - {action: clamp, value: 0, trigger: after_fire}
              - id: while-probe
                description: reads the probe as a condition and edits a direction, which is allowed
                severity: info
                watch: {pack: dirs, direction: d1}
                detect: {threshold: 0}
                intervene:
                  - {action: ablate, trigger: {while: {feature: {pack: p, probe: lies}, threshold: 1}}}

            """
        let (_, diagnostics) = RulesFixtures.lint([try rulesFile(text)], blocks: 2)
        let messages = diagnostics.items.filter { $0.severity == .error }.map(\.message)
        #expect(messages.contains("pack 'p' has no probe 'lie' (it has: lies)"), "\(messages)")
        #expect(diagnostics.items.contains { $0.hint == "did you mean 'lies'?" })
        #expect(messages.contains("pack 'p' holds a probe: name its 'probe' ('lies'), not a 'direction'"), "\(messages)")
        #expect(messages.contains("pack 'dirs' holds directions: name a 'direction', not a probe"), "\(messages)")
        #expect(messages.contains { $0.hasPrefix("rule 'edits-probe': clamp cannot edit probe 'lies'") }, "\(messages)")
        #expect(messages.count == 4, "\(messages)")
    }

    @Test func detectionReadsTheLogitAndItsRunningMeanIsTheProbeOnTheMean() throws {
        let compiled = try CompiledRules.compile(files: [try rulesFile(watching)], model: model, modelPath: "unused.gguf",
                                                 modelName: nil)
        let run = try compiled.makeRun(steered: false)
        let prompt: [[Float]] = [[5, 0, 0, 0]]
        let response: [[Float]] = [[1, 0, 0, 0], [0.5, -0.5, 2, 1], [2, 1, -1, 3]]
        let table = try run.hooks.slots(blocks: model.blockCount)
        let hooks = try #require(block1.slot(blocks: model.blockCount).flatMap { table[$0] })
        for (start, rows, origin) in [(0, prompt, TokenOrigin.prompt), (1, response, .generated)] {
            var values = rows.flatMap { $0 }
            let tokens = Array(repeating: 0, count: rows.count), origins = Array(repeating: origin, count: rows.count)
            values.withUnsafeMutableBufferPointer { buf in
                guard let base = buf.baseAddress else { return }
                let acts = HookActivations(point: block1, width: 4, count: rows.count, values: base,
                                           positions: start..<(start + rows.count), tokens: tokens[...], origins: origins[...])
                for h in hooks { h(acts) }
            }
        }
        let result = try #require(run.results().first)
        // The rule judges after each response token: its mean is the running mean of the per-token
        // logits, which for every prefix equals the probe on that prefix's mean activation; the
        // rule's value is the highest of them.
        let prefixes = (1...response.count).map { k -> Double in
            let mean = (0..<4).map { j in response.prefix(k).reduce(0.0) { $0 + Double($1[j]) } / Double(k) }
            return zip(probe.weights, mean).reduce(Double(probe.bias)) { $0 + Double($1.0) * $1.1 }
        }
        #expect(abs(prefixes[0] - 0.75) < 1e-9 && abs(prefixes[1] - 1.5) < 1e-9 && abs(prefixes[2] - 0.75) < 1e-9)
        let expected = prefixes.max() ?? 0
        let value = try #require(result.observations.first?.value)
        #expect(abs(Double(value) - expected) < 1e-5, "\(value) vs \(expected)")
        #expect(result.fired == (expected >= 0.5))
    }
}
