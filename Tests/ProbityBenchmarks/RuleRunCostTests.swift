// What rules cost per generated token on the default model: detection on a direction, on a random
// 8192-latent SAE, and the SAE rule steering too. Prints a `rules-cost:` line (docs/rules.md); a
// benchmark, so it lives outside the unit suite.

import Foundation
import ProbityFeatures
import ProbityFormats
import ProbityLM
import ProbityRules
import ProbityTensor
import ProbityTestSupport
import Testing

@Suite struct RuleRunCostTests {
    @Test func decodeCostPerToken() throws {
        let loaded = try LoadedModel.load(TestData.defaultModelPath())
        let info = loaded.model.info
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("probity-rules-cost-\(UUID().uuidString)")
        let dirs = root.appendingPathComponent("dirs").path, sae = root.appendingPathComponent("sae").path
        for d in [dirs, sae] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        let hook = HookPoint.residPost(15)
        let d = info.width, n = 8192
        var rng = SplitMix64(seed: 7)
        func random() -> Float { Float(2 * rng.nextUnit() - 1) * 0.05 }   // fixed weights; their values do not matter
        try FeaturePack.writeDirections([Direction(name: "d", point: hook, vector: (0..<d).map { _ in random() })],
                                        to: dirs + "/directions.safetensors")
        try PackManifest(name: "dirs", kind: .directions, modelName: nil, modelSHA256: nil, hook: hook.name, labels: nil,
                         directions: "directions.safetensors").jsonData().write(to: URL(fileURLWithPath: dirs + "/pack.json"))
        var w = SafeTensorsWriter()
        try w.addTensor(name: "W_enc", shape: [d, n], floats: (0..<(d * n)).map { _ in random() })
        try w.addTensor(name: "b_enc", shape: [n], floats: [Float](repeating: 0, count: n))
        try w.addTensor(name: "W_dec", shape: [n, d], floats: (0..<(d * n)).map { _ in random() })
        try w.addTensor(name: "b_dec", shape: [d], floats: [Float](repeating: 0, count: d))
        try w.write(to: sae + "/sae_weights.safetensors")
        let cfg: [String: Any] = ["d_in": d, "d_sae": n, "architecture": "standard", "metadata": ["hook_name": hook.name]]
        try JSONSerialization.data(withJSONObject: cfg).write(to: URL(fileURLWithPath: sae + "/cfg.json"))
        let rules = root.appendingPathComponent("rules.yaml").path
        try """
            schema_version: 1
            packs:
              - {name: dirs, path: dirs}
              - {name: sae, path: sae}
            rules:
              - {id: direction, description: d, severity: low, watch: {pack: dirs, direction: d}, detect: {threshold: 1, scope: all}}
              - id: latent
                description: d
                severity: low
                watch: {pack: sae, latent: 5}
                detect: {threshold: -1, scope: all}
                intervene: [{action: clamp, value: 1, trigger: after_fire}]

            """.write(toFile: rules, atomically: true, encoding: .utf8)
        let compiled = try CompiledRules.compile(files: [rules], model: loaded)

        let prompt = loaded.tokenizer.encode("The quick brown fox")
        let steps = 32
        func decodeTime(_ hooks: HookSet?) throws -> Double {
            let session = try loaded.model.makeSession(capacity: prompt.count + steps + 1)
            _ = try session.forward(prompt, origins: nil, hooks: hooks, logits: .last)
            let clock = ContinuousClock()
            let t0 = clock.now
            for _ in 0..<steps { _ = try session.forward([prompt[1]], origins: [.generated], hooks: hooks, logits: .last) }
            let c = (clock.now - t0).components
            return (Double(c.seconds) + Double(c.attoseconds) * 1e-18) / Double(steps)
        }
        let base = try decodeTime(nil)
        let direction = try compiled.makeRun(steered: false, only: ["direction"])
        let tDirection = try decodeTime(direction.hooks)
        let latent = try compiled.makeRun(steered: false, only: ["latent"])
        let tLatent = try decodeTime(latent.hooks)
        let steered = try compiled.makeRun(steered: true, only: ["latent"])
        let tSteered = try decodeTime(steered.hooks)
        let r = try #require(steered.results().first)
        // The latent rule fires at once (threshold −1) and clamps every later position.
        #expect(r.firedAt == 0 && r.interventions.first?.positions.count == prompt.count + steps)
        #expect(latent.results().first?.interventions.isEmpty == true)
        print(String(format: "rules-cost: model decode %.2f ms/token; + direction rule %.2f; + SAE-latent rule (8192) %.2f; + SAE rule steering %.2f",
                     base * 1e3, tDirection * 1e3, tLatent * 1e3, tSteered * 1e3))
    }
}
