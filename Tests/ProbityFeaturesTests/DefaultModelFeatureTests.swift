// Features on the real default model (scripts/setup fetches it): control vectors land where
// llama.cpp puts them, a CAA direction steers the next-token distribution toward its positive side,
// and SAE edits that should change nothing leave the logits alone.

import Foundation
import ProbityFormats
import ProbityTensor
import Testing
@testable import ProbityFeatures
import ProbityLM

@Suite(.serialized) struct DefaultModelFeatureTests {
    let model: any LanguageModel
    let tokenizer: Tokenizer

    init() throws {
        let gguf = try GGUFFile(path: try ModelLocator.resolve("default"))
        model = try ModelRegistry.load(gguf, pool: ThreadPool(threads: 2))
        tokenizer = try Tokenizer(gguf: gguf)
    }

    var info: ModelInfo { model.info }

    func tokens(_ text: String) -> [Int] { tokenizer.encode(text, addSpecial: true, parseSpecial: true) }

    func lastLogits(_ text: String, _ interventions: [Intervention] = [], extra: ((HookSet) -> Void)? = nil) throws -> [Float] {
        let t = tokens(text)
        let plan = FeaturePlan()
        for iv in interventions { try plan.add(iv) }
        let hooks = HookSet()
        try plan.attach(to: hooks, model: info)
        extra?(hooks)
        return try model.makeSession(capacity: t.count).forward(t, hooks: hooks, logits: .last)
    }

    func randomVector(seed: UInt64, norm: Float) -> [Float] {
        var rng = SplitMix64(seed)
        let v = rng.floats(info.width)
        let n = v.map { $0 * $0 }.reduce(0, +).squareRoot()
        return v.map { $0 * norm / n }
    }

    /// `add` at blocks.N.hook_resid_post and the same vectors loaded from a control-vector file give
    /// the same logits; and both equal adding the vector by hand where llama.cpp does, i.e. entering
    /// block N+1 (`blocks.(N+1).hook_resid_pre`), which differs from adding it before block N.
    @Test func controlVectorMatchesAddAtResidPost() throws {
        let v = randomVector(seed: 21, norm: 8)
        let cv = ControlVector(modelHint: "llama", width: info.width, directions: [10: v])
        let path = try scratchDirectory().appendingPathComponent("cv.gguf").path
        try cv.write(to: path)
        let text = "The capital of France is"
        let fromFile = try lastLogits(text, try ControlVector.load(path: path).interventions(strength: 1.5))
        let byAdd = try lastLogits(text, [Intervention(.direction(Direction(name: "v", point: .residPost(10), vector: v)), .add(1.5))])
        #expect(fromFile == byAdd)
        let byHand = try lastLogits(text) { hooks in
            hooks.attach(at: .residPre(11)) { acts in
                for r in 0..<acts.count { for j in 0..<acts.width { acts.values[r * acts.width + j] += 1.5 * v[j] } }
            }
        }
        #expect(relativeError(byAdd, byHand) <= 1e-6)
        let plain = try lastLogits(text)
        let early = try lastLogits(text, [Intervention(.direction(Direction(name: "v", point: .residPre(10), vector: v)), .add(1.5))])
        #expect(relativeError(byAdd, plain) > 1e-3)
        #expect(relativeError(byAdd, early) > 1e-4)
    }

    /// A CAA direction from a few sentiment pairs, added with a large scale, moves the next token
    /// toward the positive words: their mean logit gains on the negative words' by more than 1.
    @Test func caaDirectionShiftsTheNextToken() throws {
        let positive = ["I love this movie, it is wonderful", "What a great day, I feel happy",
                        "The food was delicious and the staff were lovely", "This is the best gift ever, thank you"]
        let negative = ["I hate this movie, it is terrible", "What an awful day, I feel miserable",
                        "The food was disgusting and the staff were rude", "This is the worst gift ever, how dare you"]
        let point = HookPoint.residPost(12)
        let v = try ContrastiveDerivation.derive(model: model, positive: positive.map(tokens),
                                                 negative: negative.map(tokens), point: point, at: .mean)
        #expect(v.count == info.width)
        func firstToken(_ s: String) -> Int { tokenizer.encode(s, addSpecial: false, parseSpecial: false)[0] }
        let good = [" great", " good", " wonderful", " amazing"].map(firstToken)
        let bad = [" terrible", " bad", " awful", " horrible"].map(firstToken)
        func margin(_ logits: [Float]) -> Float {
            good.map { logits[$0] }.reduce(0, +) / Float(good.count) - bad.map { logits[$0] }.reduce(0, +) / Float(bad.count)
        }
        let prompt = "Honestly, I thought the film was"
        let base = margin(try lastLogits(prompt))
        let dir = Direction(name: "sentiment", point: point, vector: v)
        let up = margin(try lastLogits(prompt, [Intervention(.direction(dir), .add(4))]))
        #expect(up > base + 1, "margin \(base) → \(up) with +4·v")
    }

    /// On the real model, with a random SAE at blocks.15.hook_resid_post: clamping each position's top
    /// latent to its own value leaves the logits as they were; ablating it changes them.
    @Test func noOpSAEEditsLeaveLogitsAlone() throws {
        let sae = try randomSAE(dSAE: 512, seed: 3)
        let b = SAEBinding(name: "random", sae: sae, point: .residPost(15))
        let text = "Once upon a time"
        let t = tokens(text)
        // Find the latent with the largest activation at the last position, by encoding what the model gives.
        var last: [Float] = []
        let hooks = HookSet()
        hooks.attach(at: .residPost(15)) { acts in
            let r = acts.count - 1
            last = Array(UnsafeBufferPointer(start: acts.values + r * acts.width, count: acts.width))
        }
        let plain = try model.makeSession(capacity: t.count).forward(t, hooks: hooks, logits: .last)
        let top = last.withUnsafeBufferPointer { sae.encode($0.baseAddress!, count: 1) }.active(0)[0]
        let at = PositionFilter.range((t.count - 1)..<t.count)
        let clamped = try lastLogits(text, [Intervention(.latent(b, top.index), .clamp(top.activation), positions: at)])
        #expect(relativeError(clamped, plain) <= 1e-5)
        let scaled = try lastLogits(text, [Intervention(.latent(b, top.index), .scale(1))])
        #expect(scaled == plain)
        let ablated = try lastLogits(text, [Intervention(.latent(b, top.index), .scale(50), positions: at)])
        #expect(relativeError(ablated, plain) > 1e-4)
    }

    func randomSAE(dSAE: Int, seed: UInt64) throws -> SparseAutoencoder {
        var rng = SplitMix64(seed)
        let d = info.width
        let s = 1 / Float(d).squareRoot()
        return try SparseAutoencoder(
            config: SAEConfig(dIn: d, dSAE: dSAE, architecture: .standard, hookName: "blocks.15.hook_resid_post"),
            wEnc: rng.floats(d * dSAE).map { $0 * s }, bEnc: [Float](repeating: 0, count: dSAE),
            wDec: rng.floats(dSAE * d).map { $0 * s }, bDec: [Float](repeating: 0, count: d), threshold: nil)
    }
}
