// Every common quant type end to end: the default model requantized by llama.cpp (scripts/quant-models;
// scripts/setup --models writes the files into the cache and checks their sha256) against
// llama.cpp's logits and an independent float64 forward on the same file's weights
// (Tests/Fixtures/quant, made by scripts/quant-reference; its README gives the tolerances and why).

import Foundation
import ProbityFeatures
import ProbityFormats
import ProbityTensor
import ProbityTestSupport
import Testing
@testable import ProbityLM

/// Tests/Fixtures/quant/<TYPE>.json, read strictly, and the model file it was made from.
enum QuantReference {
    /// The types llama.cpp's quantizer wrote, and Q2_K_PURE: Q2_K without llama.cpp's mixing (the
    /// one file holding Q2_K tensors, since SmolLM2's 576-wide rows are no whole number of 256-blocks).
    static let types = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K",
                        "IQ4_NL", "IQ4_XS", "F16", "BF16", "Q2_K_PURE"]

    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/quant")

    struct Prompt {
        var name: String
        var text: String
        var tokens: [Int]
        var llamaArgmax: [Int]
        var llamaTopIDs: [Int]
        var llamaSample: [Double]
        var f64Argmax: [Int]
        var f64Margins: [Double]     // float64 top-1 minus top-2 logit at every position
        var f64FinalLast: [Double]   // ln_final's output at the last position
        var f64TopIDs: [Int]
        var f64TopLogits: [Double]
    }

    struct Fixture {
        var type: String
        var sha256: String
        var tensorTypes: [String: Int]
        var sampleStride: Int
        var width: Int
        var prompts: [Prompt]
    }

    static func load(_ type: String) throws -> Fixture {
        let file = "quant/\(type).json"
        let data = try Data(contentsOf: directory.appendingPathComponent("\(type).json"))
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let meta = root["meta"] as? [String: Any], let list = root["prompts"] as? [[String: Any]],
              let sha = meta["model_sha256"] as? String, let tensorTypes = meta["tensor_types"] as? [String: Int],
              let stride = meta["sample_stride"] as? Int, let width = meta["width"] as? Int else {
            throw FixtureError("\(file): unexpected layout")
        }
        func doubles(_ p: [String: Any], _ key: String) throws -> [Double] {
            guard let v = p[key] as? [NSNumber] else { throw FixtureError("\(file): missing \(key)") }
            return v.map(\.doubleValue)
        }
        func ints(_ p: [String: Any], _ key: String) throws -> [Int] {
            guard let v = p[key] as? [Int] else { throw FixtureError("\(file): missing \(key)") }
            return v
        }
        let prompts = try list.map { p -> Prompt in
            guard let name = p["name"] as? String, let text = p["text"] as? String else {
                throw FixtureError("\(file): prompt without name or text")
            }
            return Prompt(name: name, text: text, tokens: try ints(p, "tokens"),
                          llamaArgmax: try ints(p, "llamacpp_argmax"), llamaTopIDs: try ints(p, "llamacpp_top_ids"),
                          llamaSample: try doubles(p, "llamacpp_sample_logits"),
                          f64Argmax: try ints(p, "f64_argmax"), f64Margins: try doubles(p, "f64_margins"),
                          f64FinalLast: try doubles(p, "f64_final_last"),
                          f64TopIDs: try ints(p, "f64_top_ids"), f64TopLogits: try doubles(p, "f64_top_logits"))
        }
        return Fixture(type: type, sha256: sha, tensorTypes: tensorTypes, sampleStride: stride, width: width,
                       prompts: prompts)
    }

    static func modelPath(_ type: String) throws -> String {
        try TestData.cacheFile("quant-models/SmolLM2-135M-Instruct.\(type).gguf",
                               what: "the default model requantized to \(type) (scripts/quant-models)",
                               setup: "scripts/setup --models")
    }
}

@Suite(.serialized) struct QuantReferenceTests {
    /// llama.cpp's top-1 may differ from ours only where llama.cpp's differs from float64's: it
    /// rounds activations to 8 bits (to F16 for F16 weights), which moves close calls. Besides,
    /// at least this share of positions must agree (measured 90–100%, docs/KERNELS.md).
    static let minimumAgreement = 0.9

    /// Logits at every position and ln_final's output at the last one.
    private func run(_ model: LlamaModel, _ tokens: [Int]) throws -> (logits: [Float], finalLast: [Float]) {
        var finalLast = [Float]()
        let hooks = HookSet()
        hooks.attach(at: .finalNormalized) { a in finalLast = Array(a.row(a.count - 1)) }
        let logits = try model.makeSession(capacity: tokens.count).forward(tokens, hooks: hooks, logits: .all)
        return (logits, finalLast)
    }

    /// The opt-in 8-bit activation mode on the files whose matrices it covers (all of Q4_0, Q5_0,
    /// Q5_1 and Q8_0; most of Q4_K_M, whose Q6_K ones stay float32), each prompt fed as decode
    /// steps, last-position logits against float64 on the same weights.
    ///
    /// One run's distance on one prompt is close to a random draw: rounding to 8 bits turns a change
    /// of one ulp upstream into a different rounding here and there, and the logits follow. So each
    /// of the 20 prompt × file pairs is drawn three times: as run, and twice with the last bit of a
    /// random half of the first block's inputs moved up (`Float.nextUp`, every position). The
    /// median of the 60 draws must be within 1.5 × the median of llama.cpp's 20 distances on its
    /// sample; a draw beyond 0.5 is a fault, not noise; float64's top-1 must hold on the unperturbed
    /// run wherever it leads by ≥ 0.5. Measured: median 0.052 (mean 0.063) against llama.cpp's
    /// 0.048 (0.052); Q4_0 "plain" drew 0.314, 0.245 and 0.061 (llama.cpp's 0.116), Q8_0 "chat"
    /// 0.076, 0.084 and 0.119 (0.047), Q5_1 "chat" 0.119, 0.111 and 0.039 (0.077).
    @Test func eightBitDecodeStaysNearFloat64() throws {
        var ours = [Double](), llama = [Double]()
        for type in ["Q4_0", "Q5_0", "Q5_1", "Q8_0", "Q4_K_M"] {
            let fixture = try QuantReference.load(type)
            let gguf = try GGUFFile(path: try QuantReference.modelPath(type))
            let model = try LlamaModel(gguf: gguf, pool: ThreadPool(threads: 2), activations: .q8)
            for p in fixture.prompts {
                let ref = float64Logits(model.output, width: model.info.width, vocab: model.info.vocabularySize,
                                        final: p.f64FinalLast)
                let sampled = stride(from: 0, to: ref.count, by: fixture.sampleStride)
                let llamaOwn = relativeL2(p.llamaSample.map { Float($0) }, sampled.map { ref[$0] })
                llama.append(llamaOwn)
                let leads = (p.f64Margins.last ?? 0) >= 0.5
                let draws = try Q8ActivationModelTests.threeDraws(model, p.tokens, reference: ref,
                                                                  top1: leads ? p.f64TopIDs[0] : nil, "\(type) \(p.name)")
                ours += draws
                print("\(type) q8 \(p.name): rel L2 vs float64 \(draws.map { String(format: "%.4f", $0) })"
                      + " (llama.cpp's own \(String(format: "%.4f", llamaOwn)))")
            }
        }
        let (m, llamaMedian) = (Q8ActivationModelTests.median(ours), Q8ActivationModelTests.median(llama))
        #expect(ours.count == 60 && llama.count == 20)
        #expect(m <= 1.5 * llamaMedian, "q8 median rel L2 \(m) vs float64; llama.cpp's \(llamaMedian)")
        print("q8: median rel L2 vs float64 \(String(format: "%.4f", m)) over \(ours.count) draws"
              + " (mean \(String(format: "%.4f", ours.reduce(0, +) / Double(ours.count)))), llama.cpp's median"
              + " \(String(format: "%.4f", llamaMedian)) (mean \(String(format: "%.4f", llama.reduce(0, +) / Double(llama.count))))")
    }

    /// One type end to end: the file is the one the fixture was made from and holds the tensor types
    /// it should; it loads; our tokens are llama.cpp's; our logits are within 2e-3 (rel L2) of
    /// float64 on the same weights at each prompt's last position (whole vocabulary) and give
    /// float64's top-1 wherever it leads by ≥ 0.01; against llama.cpp, rel L2 ≤ 0.15 over the
    /// stored sample (or ≤ 1.05 × llama.cpp's own distance from float64 where that is larger) and
    /// the same top-1 at ≥ 90% of positions and at every position where llama.cpp's top-1 is float64's.
    @Test(arguments: QuantReference.types)
    func matchesLlamaCppAndFloat64(_ type: String) throws {
        let fixture = try QuantReference.load(type)
        let path = try QuantReference.modelPath(type)
        #expect(try SHA256.hex(file: path) == fixture.sha256,
                "\(type): regenerate with scripts/setup --models (or the fixture with scripts/quant-reference)")
        let gguf = try GGUFFile(path: path)
        var types: [String: Int] = [:]
        for t in gguf.tensors { types[t.type.name, default: 0] += 1 }
        #expect(types == fixture.tensorTypes, "\(type): tensor types \(types)")
        let model = try LlamaModel(gguf: gguf, pool: ThreadPool(threads: 2))
        let tokenizer = try Tokenizer(gguf: gguf)
        let vocab = model.info.vocabularySize, width = model.info.width
        #expect(width == fixture.width)
        var agree = 0, positions = 0, worstF64 = 0.0, worstLlama = 0.0
        for p in fixture.prompts {
            let n = p.tokens.count
            #expect(tokenizer.encode(p.text, addSpecial: true, parseSpecial: true) == p.tokens, "\(type) \(p.name): tokens")
            let (logits, finalLast) = try run(model, p.tokens)
            let last = Array(logits[((n - 1) * vocab)..<(n * vocab)])
            // Float64 on the same dequantized weights.
            let ref = float64Logits(model.output, width: model.info.width, vocab: model.info.vocabularySize, final: p.f64FinalLast)
            #expect(argmax(ref) == p.f64TopIDs[0], "\(type) \(p.name): recomputed float64 top-1")
            #expect(abs(ref[p.f64TopIDs[0]] - p.f64TopLogits[0]) <= 1e-4 * max(1, abs(p.f64TopLogits[0])),
                    "\(type) \(p.name): recomputed float64 top logit")
            let rel = relativeL2(last, ref), relFinal = relativeL2(finalLast, p.f64FinalLast)
            #expect(rel <= 2e-3, "\(type) \(p.name): logits rel L2 \(rel) vs float64")
            #expect(relFinal <= 2e-3, "\(type) \(p.name): final state rel L2 \(relFinal) vs float64")
            worstF64 = max(worstF64, rel, relFinal)
            for i in 0..<n where p.f64Margins[i] >= 0.01 {
                let ours = argmax(logits[(i * vocab)..<((i + 1) * vocab)])
                #expect(ours == p.f64Argmax[i], "\(type) \(p.name): position \(i) top-1 differs from float64")
            }
            // llama.cpp.
            let sample = stride(from: 0, to: vocab, by: fixture.sampleStride).map { last[$0] }
            let refSample = stride(from: 0, to: vocab, by: fixture.sampleStride).map { ref[$0] }
            #expect(sample.count == p.llamaSample.count)
            let relLlama = relativeL2(sample, p.llamaSample)
            let llamaOwn = relativeL2(p.llamaSample.map { Float($0) }, refSample)
            #expect(relLlama <= max(0.15, 1.05 * llamaOwn),
                    "\(type) \(p.name): rel L2 \(relLlama) vs llama.cpp (llama.cpp vs float64: \(llamaOwn))")
            worstLlama = max(worstLlama, relLlama)
            for i in 0..<n {
                let ours = argmax(logits[(i * vocab)..<((i + 1) * vocab)])
                if ours == p.llamaArgmax[i] { agree += 1 }
                if p.llamaArgmax[i] == p.f64Argmax[i] {
                    #expect(ours == p.llamaArgmax[i], "\(type) \(p.name): position \(i) top-1 differs from llama.cpp and float64")
                }
            }
            positions += n
            print("\(type) \(p.name) (\(n) tokens): rel L2 vs float64 \(String(format: "%.1e", rel)),"
                  + " vs llama.cpp \(String(format: "%.3f", relLlama)) (llama.cpp vs float64 \(String(format: "%.3f", llamaOwn)))")
        }
        #expect(Double(agree) >= Self.minimumAgreement * Double(positions), "\(type): top-1 agrees with llama.cpp at \(agree)/\(positions)")
        print("\(type): top-1 as llama.cpp at \(agree)/\(positions) positions; worst rel L2 vs float64"
              + " \(String(format: "%.1e", worstF64)), vs llama.cpp \(String(format: "%.3f", worstLlama))")
    }
}
