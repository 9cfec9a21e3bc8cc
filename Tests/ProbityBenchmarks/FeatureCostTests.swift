// What an SAE monitor costs per token on the default model: one 8192-latent encode next to the
// model's own decode step. Prints a `feature-cost:` line (docs/features.md); a benchmark, so it
// lives outside the unit suite.

import Foundation
import ProbityFeatures
import ProbityFormats
import ProbityLM
import ProbityTensor
import ProbityTestSupport
import Testing

@Suite struct FeatureCostTests {
    /// A random standard SAE at block 15 with weights of the size a trained one has.
    static func randomSAE(width d: Int, dSAE: Int, seed: UInt64) throws -> SparseAutoencoder {
        var rng = SplitMix64(seed: seed)
        let s = 1 / Float(d).squareRoot()
        func weights(_ n: Int) -> [Float] { (0..<n).map { _ in Float(2 * rng.nextUnit() - 1) * s } }
        return try SparseAutoencoder(
            config: SAEConfig(dIn: d, dSAE: dSAE, architecture: .standard, hookName: "blocks.15.hook_resid_post"),
            wEnc: weights(d * dSAE), bEnc: [Float](repeating: 0, count: dSAE),
            wDec: weights(dSAE * d), bDec: [Float](repeating: 0, count: d), threshold: nil)
    }

    @Test func encodeCostPerToken() throws {
        let gguf = try GGUFFile(path: TestData.defaultModelPath())
        let model = try ModelRegistry.load(gguf, pool: ThreadPool(threads: 2))
        let tokenizer = try Tokenizer(gguf: gguf)
        let info = model.info
        let sae = try Self.randomSAE(width: info.width, dSAE: 8192, seed: 9)
        let b = SAEBinding(name: "random-8192", sae: sae, point: .residPost(15))
        let prompt = tokenizer.encode("The quick brown fox", addSpecial: true, parseSpecial: true)
        let steps = 32
        func decodeTime(_ hooks: HookSet?) throws -> Double {
            let session = try model.makeSession(capacity: prompt.count + steps + 1)
            _ = try session.forward(prompt, hooks: hooks, logits: .last)
            let clock = ContinuousClock()
            let t0 = clock.now
            for _ in 0..<steps { _ = try session.forward([prompt[1]], origins: [.generated], hooks: hooks, logits: .last) }
            return seconds(clock.now - t0) / Double(steps)
        }
        var x = [Float](repeating: 0.5, count: info.width)
        x[3] = -1
        let clock = ContinuousClock()
        let reps = 200
        let t0 = clock.now
        for _ in 0..<reps {
            x.withUnsafeBufferPointer { p in if let base = p.baseAddress { _ = sae.encode(base, count: 1) } }
        }
        let encode = seconds(clock.now - t0) / Double(reps)
        let plan = FeaturePlan()
        _ = plan.monitor(b, top: 10)
        let hooks = HookSet()
        try plan.attach(to: hooks, model: info)
        let noop = HookSet()
        noop.attach(at: .residPost(15)) { _ in }
        let base = try decodeTime(nil)
        let idle = try decodeTime(noop)
        let monitored = try decodeTime(hooks)
        print(String(format: "feature-cost: encode 8192 latents %.3f ms/token; model decode %.3f ms/token (%.3f with an empty hook); with monitor %.3f ms/token (+%.1f%%)",
                     encode * 1e3, base * 1e3, idle * 1e3, monitored * 1e3, (monitored / base - 1) * 100))
        #expect(encode > 0 && base > 0)
    }
}

/// A duration in seconds.
func seconds(_ d: Duration) -> Double {
    let c = d.components
    return Double(c.seconds) + Double(c.attoseconds) * 1e-18
}
