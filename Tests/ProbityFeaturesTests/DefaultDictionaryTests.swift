// The committed default SAE dictionary (packs/smollm2-l15, trained by `probity sae train`): it
// loads against the default model, its labels are consistent, and each labelled latent the rules
// use fires on a text of the kind its label names and stays quiet on a neutral one.

import Foundation
import ProbityFormats
import ProbityTensor
import Testing
import ProbityFeatures
import ProbityLM

@Suite(.serialized) struct DefaultDictionaryTests {
    static let packPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path + "/packs/smollm2-l15"

    /// Per latent, its largest activation over the text's non-special tokens.
    static func maxActivations(_ text: String, pack: FeaturePack, sae: SparseAutoencoder, model: any LanguageModel,
                               tokenizer: Tokenizer) throws -> [Float] {
        let tokens = tokenizer.encode(text, addSpecial: true, parseSpecial: true)
        var rows: [Float] = []
        var count = 0
        let hooks = HookSet()
        hooks.attach(at: pack.hook) { acts in
            for r in 0..<acts.count where !tokenizer.isSpecial(acts.tokens[acts.tokens.startIndex + r]) {
                rows += UnsafeBufferPointer(start: acts.values + r * acts.width, count: acts.width)
                count += 1
            }
        }
        try model.makeSession(capacity: tokens.count).forward(tokens, origins: nil, hooks: hooks, through: pack.hook)
        let enc = rows.withUnsafeBufferPointer { sae.encode($0.baseAddress!, count: count) }
        var best = [Float](repeating: 0, count: sae.dSAE)
        for r in 0..<count { for a in enc.active(r) { best[a.index] = max(best[a.index], a.activation) } }
        return best
    }

    @Test func labelledLatentsFireOnWhatTheyName() throws {
        let path = try ModelLocator.resolve("default")
        let gguf = try GGUFFile(path: path)
        let model = try ModelRegistry.load(gguf, pool: ThreadPool(threads: 2))
        let tokenizer = try Tokenizer(gguf: gguf)
        let pack = try FeaturePack.load(path: Self.packPath)
        let sae = try #require(pack.sae)
        #expect(pack.kind == .sae && pack.hook == .residPost(15) && sae.dIn == 576 && sae.dSAE == 8192)
        #expect(try pack.checkCompatibility(model: model.info, modelPath: path, modelName: nil, allowModelMismatch: false) == nil)
        let weights = try SafeTensorsFile(path: Self.packPath + "/sae_weights.safetensors")
        #expect(weights.tensors.allSatisfy { $0.dtype == .f16 })

        let neutral = "The train leaves the station at nine in the morning and arrives in the afternoon."
        let cases: [(label: String, text: String)] = [
            ("praise", "That's great, Alice. Your plan is wonderful."),
            ("agreement", "Yes, I agree with you completely."),
            ("effusive-opener", "<|im_start|>assistant\nHello! How wonderful to see you!"),
            ("fakery", "He sold a convincing fake painting to the museum."),
            ("declining", "<|im_start|>assistant\nI'm sorry, but I am not able to share that."),
            ("cannot", "<|im_start|>assistant\nI couldn't find any information about that, and I can't tell you."),
            ("gold", "She won a gold medal and wore a golden crown."),
        ]
        let quiet = try Self.maxActivations(neutral, pack: pack, sae: sae, model: model, tokenizer: tokenizer)
        for (label, text) in cases {
            let id = try #require(pack.labels.id(named: label), "no latent named '\(label)'")
            let latent = try #require(Int(id))
            let max = try #require(pack.labels[latent: latent]?.maxActivation)
            let seen = try Self.maxActivations(text, pack: pack, sae: sae, model: model, tokenizer: tokenizer)
            print(String(format: "default-dictionary: %@ (latent %d, max %.2f): %.2f on its text, %.2f on the neutral one",
                         label, latent, max, seen[latent], quiet[latent]))
            #expect(seen[latent] >= 0.3 * max, "\(label): \(seen[latent]) on \"\(text)\" (max activation \(max))")
            #expect(quiet[latent] < 0.1 * max, "\(label): \(quiet[latent]) on the neutral text")
        }
    }
}
