// The Llama forward pass against llama.cpp's logits and an independent float64 implementation
// (Tests/Fixtures/reference/README.md gives the tolerances used here and why).

import Foundation
import Testing
@testable import ProbityLM
import ProbityTestSupport

@Suite(.serialized) struct LlamaReferenceTests {
    let model: LlamaModel
    let variants: [Reference.Variant]

    init() throws {
        model = try Reference.defaultModel()
        variants = try Reference.variants()
    }

    @Test func loadsTheDefaultModel() {
        #expect(model.info == ModelInfo(architecture: "llama", blockCount: 30, width: 576,
                                        vocabularySize: 49152, contextLength: 8192))
    }

    /// f32 on exactly dequantized weights: within 2e-3 of float64, same top-1 (DESIGN.md Numerics).
    @Test func matchesFloat64Reference() throws {
        #expect(variants.count == 8)
        for v in variants {
            let session = try model.makeSession(capacity: v.tokens.count)
            let logits = try session.forward(v.tokens, logits: .last)
            let ref = try Reference.vector(v.f64File)
            let rel = relativeL2(logits, ref)
            #expect(rel <= 2e-3, "\(v.prompt)/\(v.variant): rel L2 \(rel) vs float64")
            #expect(argmax(logits) == argmax(ref), "\(v.prompt)/\(v.variant): top-1 differs")
            print("reference \(v.prompt)/\(v.variant): rel L2 vs f64 \(String(format: "%.2e", rel))")
        }
    }

    /// llama.cpp quantizes activations to 8 bits, so it sits 1–7% away: same top-1, top-10
    /// overlap ≥ 8, rel L2 ≤ 0.1.
    @Test func matchesLlamaCpp() throws {
        for v in variants {
            let session = try model.makeSession(capacity: v.tokens.count)
            let logits = try session.forward(v.tokens, logits: .last)
            let ref = try Reference.vector(v.logitsFile)
            let rel = relativeL2(logits, ref)
            let overlap = Set(topK(logits, 10)).intersection(v.top10).count
            #expect(argmax(logits) == v.top10[0], "\(v.prompt)/\(v.variant): top-1")
            #expect(overlap >= 8, "\(v.prompt)/\(v.variant): top-10 overlap \(overlap)")
            #expect(rel <= 0.1, "\(v.prompt)/\(v.variant): rel L2 \(rel) vs llama.cpp")
            print("reference \(v.prompt)/\(v.variant): rel L2 vs llama.cpp \(String(format: "%.4f", rel)), top-10 overlap \(overlap)")
        }
    }

    /// Teacher-forced on llama.cpp's 32 greedy tokens: our argmax agrees at ≥ 29 of 32 positions.
    @Test func greedyAgreesWithLlamaCpp() throws {
        for v in variants {
            let sequence = v.tokens + v.greedy
            let session = try model.makeSession(capacity: sequence.count)
            let logits = try session.forward(sequence, logits: .all)
            let vocab = model.info.vocabularySize
            var agree = 0
            for (j, expected) in v.greedy.enumerated() {
                let row = v.tokens.count - 1 + j
                if argmax(logits[(row * vocab)..<((row + 1) * vocab)]) == expected { agree += 1 }
            }
            #expect(agree >= 29, "\(v.prompt)/\(v.variant): \(agree)/32 greedy positions agree")
            print("greedy \(v.prompt)/\(v.variant): \(agree)/32")
        }
    }
}
