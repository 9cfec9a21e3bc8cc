// The half KV cache on the default model against the float cache: each of 24 prompts with a greedy
// continuation of 48 tokens (from the float cache) is run through both, and every position's
// logits compared. The numbers this test prints are the ones docs/BENCHMARKS.md quotes (measured:
// top-1 agreement 1348/1348 positions, rel-L2 max 5.9e-3, KL max 2.2e-5; the bounds leave room).

import Foundation
import Testing
import ProbityTensor
@testable import ProbityLM

@Suite(.serialized) struct HalfKVCacheModelTests {
    static let prompts = [
        "The capital of France is", "Once upon a time, in a small village by the sea,", "def fibonacci(n):",
        "The three primary colours of light are", "Water boils at a temperature of", "1, 2, 3, 4, 5,",
        "Dear Sir or Madam, I am writing to", "The theory of relativity was developed by",
        "To make a cup of tea, first", "The largest planet in our solar system is",
        "In 1492, Columbus sailed", "A haiku about autumn:", "The mitochondria is the powerhouse of",
        "SELECT name FROM users WHERE", "The quick brown fox jumps over", "Photosynthesis is the process by which",
        "My favourite book is", "The stock market fell sharply today because", "How do I reverse a list in Python?",
        "The recipe calls for two cups of flour and", "Shakespeare wrote many plays, including",
        "The human heart has four chambers:", "<|im_start|>user\nWhat is 12 times 7?<|im_end|>\n<|im_start|>assistant\n",
        "Translate to French: Good morning, how are you?",
    ]

    struct Comparison {
        var positions = 0, topAgree = 0, lastPromptAgree = 0, prompts = 0
        var worstRelL2 = 0.0, sumRelL2 = 0.0, worstKL = 0.0, sumKL = 0.0
    }

    static func softmax(_ x: ArraySlice<Float>) -> [Double] {
        let m = Double(x.max() ?? 0)
        let e = x.map { Foundation.exp(Double($0) - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    @Test func halfCacheLogitsAgreeWithTheFloatCache() throws {
        let f32 = try LoadedModel.load("default", threads: 2)
        let f16 = try LoadedModel.load("default", threads: 2, kvCache: .f16)
        #expect(f32.model.kvCache == .f32 && f16.model.kvCache == .f16)
        let vocab = f32.model.info.vocabularySize
        var c = Comparison()
        let generator = Generator(model: f32.model, tokenizer: f32.tokenizer)
        for text in Self.prompts {
            let prompt = f32.tokenizer.encode(text, addSpecial: true, parseSpecial: true)
            let options = GenerationOptions(maxTokens: 48, stopAtEOS: false)
            let continuation = try generator.generate(prompt: prompt, options: options).tokens
            let tokens = prompt + continuation
            func logits(_ m: LoadedModel) throws -> [Float] {
                try m.model.makeSession(capacity: tokens.count).forward(tokens, origins: nil, hooks: nil, logits: .all)
            }
            let (a, b) = (try logits(f32), try logits(f16))
            #expect(a.count == tokens.count * vocab && b.count == a.count)
            #expect(a != b, "the half cache rounds keys and values")
            for p in 0..<tokens.count {
                let ra = a[(p * vocab)..<((p + 1) * vocab)], rb = b[(p * vocab)..<((p + 1) * vocab)]
                var diff = 0.0, norm = 0.0
                for (x, y) in zip(ra, rb) {
                    diff += (Double(x) - Double(y)) * (Double(x) - Double(y))
                    norm += Double(x) * Double(x)
                }
                let rel = (diff / norm).squareRoot()
                let (pa, pb) = (Self.softmax(ra), Self.softmax(rb))
                let kl = zip(pa, pb).reduce(0.0) { $0 + ($1.0 > 0 ? $1.0 * Foundation.log($1.0 / max($1.1, 1e-300)) : 0) }
                let agree = ra.indices.max { ra[$0] < ra[$1] } == rb.indices.max { rb[$0] < rb[$1] }
                c.positions += 1
                c.topAgree += agree ? 1 : 0
                if p == prompt.count - 1 { c.lastPromptAgree += agree ? 1 : 0 }
                c.worstRelL2 = max(c.worstRelL2, rel)
                c.sumRelL2 += rel
                c.worstKL = max(c.worstKL, kl)
                c.sumKL += kl
            }
            c.prompts += 1
        }
        print(String(format: "f16 vs f32 KV cache: %d prompts, %d positions; top-1 agreement %d/%d (%.2f%%), at the last prompt position %d/%d; rel-L2 mean %.2e max %.2e; KL mean %.2e max %.2e",
                     c.prompts, c.positions, c.topAgree, c.positions, 100 * Double(c.topAgree) / Double(c.positions),
                     c.lastPromptAgree, c.prompts, c.sumRelL2 / Double(c.positions), c.worstRelL2,
                     c.sumKL / Double(c.positions), c.worstKL))
        #expect(c.lastPromptAgree == c.prompts)
        #expect(Double(c.topAgree) >= 0.99 * Double(c.positions))
        #expect(c.worstRelL2 <= 1e-2)
        #expect(c.worstKL <= 1e-3)
    }
}
