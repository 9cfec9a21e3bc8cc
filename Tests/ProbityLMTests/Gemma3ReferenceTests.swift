// The Gemma 3 forward pass against llama.cpp's logits and an independent float64 implementation
// (Tests/Fixtures/gemma3, made by scripts/gemma3-reference; its README gives the tolerances and why).

import Foundation
import ProbityFormats
import ProbityTensor
import ProbityTestSupport
import Testing
@testable import ProbityLM

/// Tests/Fixtures/gemma3/reference.json, read strictly.
enum Gemma3Reference {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/gemma3")

    struct Prompt {
        var name: String
        var text: String
        var tokens: [Int]
        var llamaTopIDs: [Int]
        var llamaSample: [Double]
        var f64TopIDs: [Int]
        var f64TopLogits: [Double]
        var f64Final: [Double]
        var f64ResidPost: [Double]
        var greedy: [Int]?
    }

    struct Fixture {
        var prompts: [Prompt]
        var sampleStride: Int
        var hookBlock: Int
        var window: Int
    }

    static func load() throws -> Fixture {
        let data = try Data(contentsOf: directory.appendingPathComponent("reference.json"))
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let meta = root["meta"] as? [String: Any], let list = root["prompts"] as? [[String: Any]],
              let stride = meta["sample_stride"] as? Int, let block = meta["hook_block"] as? Int,
              let window = meta["window"] as? Int else {
            throw FixtureError("gemma3/reference.json: unexpected layout")
        }
        func doubles(_ p: [String: Any], _ key: String) throws -> [Double] {
            guard let v = p[key] as? [NSNumber] else { throw FixtureError("gemma3/reference.json: missing \(key)") }
            return v.map(\.doubleValue)
        }
        func ints(_ p: [String: Any], _ key: String) throws -> [Int] {
            guard let v = p[key] as? [Int] else { throw FixtureError("gemma3/reference.json: missing \(key)") }
            return v
        }
        let prompts = try list.map { p -> Prompt in
            guard let name = p["name"] as? String, let text = p["text"] as? String else {
                throw FixtureError("gemma3/reference.json: prompt without name or text")
            }
            return Prompt(name: name, text: text, tokens: try ints(p, "tokens"),
                          llamaTopIDs: try ints(p, "llamacpp_top_ids"),
                          llamaSample: try doubles(p, "llamacpp_sample_logits"),
                          f64TopIDs: try ints(p, "f64_top_ids"), f64TopLogits: try doubles(p, "f64_top_logits"),
                          f64Final: try doubles(p, "f64_final_normalized"),
                          f64ResidPost: try doubles(p, "f64_resid_post"),
                          greedy: p["llamacpp_greedy"] as? [Int])
        }
        return Fixture(prompts: prompts, sampleStride: stride, hookBlock: block, window: window)
    }

    static func model(threads: Int = 2) throws -> Gemma3Model {
        let gguf = try GGUFFile(path: try TestData.gemma3ModelPath())
        return try Gemma3Model(gguf: gguf, pool: ThreadPool(threads: threads))
    }
}

@Suite(.serialized) struct Gemma3ReferenceTests {
    let model: Gemma3Model
    let fixture: Gemma3Reference.Fixture

    init() throws {
        model = try Gemma3Reference.model()
        fixture = try Gemma3Reference.load()
    }

    @Test func loadsTheModel() {
        #expect(model.info == ModelInfo(architecture: "gemma3", blockCount: 18, width: 640,
                                        vocabularySize: 262_144, contextLength: 32_768))
        let c = model.config
        #expect(c.window == 512 && c.heads == 4 && c.kvHeads == 1 && c.headDim == 256)
        #expect((0..<18).filter { c.isGlobal(block: $0) } == [5, 11, 17])
        #expect(c.ropeBaseGlobal == 1_000_000 && c.ropeBaseLocal == 10_000 && c.finalLogitSoftcap == nil)
    }

    @Test func fixtureCoversTheWindow() {
        #expect(fixture.prompts.count >= 20)
        #expect(fixture.prompts.filter { $0.tokens.count > fixture.window }.count >= 4)
        #expect(fixture.prompts.contains { (600...800).contains($0.tokens.count) })
    }

    /// Our tokenizer gives llama.cpp's tokens for every prompt text (BOS added, specials parsed).
    @Test func tokenizesLikeLlamaCpp() throws {
        let tokenizer = try Tokenizer(gguf: GGUFFile(path: try TestData.gemma3ModelPath()))
        for p in fixture.prompts {
            #expect(tokenizer.encode(p.text, addSpecial: true, parseSpecial: true) == p.tokens, "\(p.name)")
        }
    }

    /// Last-position logits, the final normalized state and the residual leaving block 5.
    private func run(_ tokens: [Int]) throws -> (logits: [Float], final: [Float], resid: [Float]) {
        let width = model.info.width
        var final = [Float](), resid = [Float]()
        let hooks = HookSet()
        hooks.attach(at: .finalNormalized) { a in final = Array(a.row(a.count - 1)) }
        hooks.attach(at: .residPost(fixture.hookBlock)) { a in resid = Array(a.row(a.count - 1)) }
        let session = try model.makeSession(capacity: tokens.count)
        let logits = try session.forward(tokens, hooks: hooks, logits: .last)
        #expect(final.count == width && resid.count == width)
        return (logits, final, resid)
    }

    /// f32 on exactly dequantized weights: within 2e-3 of float64 (rel L2 over all 262,144
    /// logits, and for the final state and block 5's residual), same top-1 (DESIGN.md Numerics).
    @Test func matchesFloat64Reference() throws {
        for p in fixture.prompts {
            let (logits, final, resid) = try run(p.tokens)
            let ref = float64Logits(model.output, width: model.info.width, vocab: model.info.vocabularySize, final: p.f64Final)
            // The head recomputed here agrees with the script's own float64 head.
            #expect(argmax(ref) == p.f64TopIDs[0], "\(p.name): recomputed float64 top-1")
            #expect(abs(ref[p.f64TopIDs[0]] - p.f64TopLogits[0]) <= 1e-6 * max(1, abs(p.f64TopLogits[0])), "\(p.name)")
            let rel = relativeL2(logits, ref)
            let relFinal = relativeL2(final, p.f64Final), relResid = relativeL2(resid, p.f64ResidPost)
            #expect(rel <= 2e-3, "\(p.name): rel L2 \(rel) vs float64")
            #expect(relFinal <= 2e-3, "\(p.name): final state rel L2 \(relFinal)")
            #expect(relResid <= 2e-3, "\(p.name): blocks.\(fixture.hookBlock).hook_resid_post rel L2 \(relResid)")
            #expect(argmax(logits) == p.f64TopIDs[0], "\(p.name): top-1 differs from float64")
            print("gemma3 \(p.name) (\(p.tokens.count) tokens): rel L2 vs f64 logits \(String(format: "%.2e", rel)),"
                  + " final \(String(format: "%.2e", relFinal)), resid_post \(String(format: "%.2e", relResid))")
        }
    }

    /// The opt-in 8-bit activation mode (docs/KERNELS.md), on the prompts of at most 48 tokens fed
    /// as decode steps (the only products it changes; here the Q8_0 head and the Q4_K, Q5_0 and
    /// Q8_0 matrices, the Q6_K ones stay float32). One run's distance is a draw (see
    /// QuantReferenceTests.eightBitDecodeStaysNearFloat64), so each prompt is drawn three times, as
    /// run and with two one-ulp perturbations of the first block's inputs: the median of the draws
    /// within 1.5 × the median of llama.cpp's own distances from float64 on its sample, no draw
    /// beyond 0.5, and float64's top-1 on the unperturbed run wherever it leads by ≥ 0.5. Measured
    /// on the 14 prompts: median 0.021 (draws 0.008–0.097), llama.cpp's median 0.035 (0.015–0.117).
    @Test func eightBitDecodeStaysNearFloat64() throws {
        let q8 = try Gemma3Model(gguf: GGUFFile(path: try TestData.gemma3ModelPath()), pool: ThreadPool(threads: 2),
                                 activations: .q8)
        let short = fixture.prompts.filter { $0.tokens.count <= 48 }
        #expect(short.count >= 3)
        var ours = [Double](), llama = [Double]()
        for p in short {
            let ref = float64Logits(model.output, width: model.info.width, vocab: model.info.vocabularySize, final: p.f64Final)
            let sampled = stride(from: 0, to: ref.count, by: fixture.sampleStride)
            llama.append(relativeL2(p.llamaSample.map { Float($0) }, sampled.map { ref[$0] }))
            let leads = p.f64TopLogits.count >= 2 && p.f64TopLogits[0] - p.f64TopLogits[1] >= 0.5
            let draws = try Q8ActivationModelTests.threeDraws(q8, p.tokens, reference: ref,
                                                              top1: leads ? p.f64TopIDs[0] : nil, p.name)
            ours += draws
            print("gemma3 q8 \(p.name) (\(p.tokens.count) tokens): rel L2 vs f64 \(draws.map { String(format: "%.4f", $0) })"
                  + " (llama.cpp's own \(String(format: "%.4f", llama[llama.count - 1])))")
        }
        let (m, llamaMedian) = (Q8ActivationModelTests.median(ours), Q8ActivationModelTests.median(llama))
        #expect(m <= 1.5 * llamaMedian, "q8 median rel L2 \(m) vs float64; llama.cpp's \(llamaMedian)")
        print("gemma3 q8: median rel L2 vs f64 \(String(format: "%.4f", m)) over \(ours.count) draws"
              + " (\(String(format: "%.4f", ours.min() ?? 0))–\(String(format: "%.4f", ours.max() ?? 0))),"
              + " llama.cpp's median \(String(format: "%.4f", llamaMedian))"
              + " (\(String(format: "%.4f", llama.min() ?? 0))–\(String(format: "%.4f", llama.max() ?? 0)))")
    }

    /// llama.cpp quantizes activations to 8 bits, which puts it 0.015–0.117 (rel L2) from the
    /// float64 result on these prompts (the fixture's README): same top-1, top-10 overlap ≥ 8, rel
    /// L2 ≤ 0.15 over the stored sample (every 128th vocabulary id).
    @Test func matchesLlamaCpp() throws {
        for p in fixture.prompts {
            let (logits, _, _) = try run(p.tokens)
            let sample = stride(from: 0, to: logits.count, by: fixture.sampleStride).map { logits[$0] }
            #expect(sample.count == p.llamaSample.count)
            let rel = relativeL2(sample, p.llamaSample)
            let overlap = Set(topK(logits, 10)).intersection(p.llamaTopIDs.prefix(10)).count
            #expect(argmax(logits) == p.llamaTopIDs[0], "\(p.name): top-1 differs from llama.cpp")
            #expect(overlap >= 8, "\(p.name): top-10 overlap \(overlap)")
            #expect(rel <= 0.15, "\(p.name): rel L2 \(rel) vs llama.cpp")
            print("gemma3 \(p.name): rel L2 vs llama.cpp \(String(format: "%.4f", rel)), top-10 overlap \(overlap)")
        }
    }

    /// Teacher-forced on llama.cpp's 16 greedy tokens: our argmax agrees at ≥ 15 of 16 positions.
    @Test func greedyAgreesWithLlamaCpp() throws {
        let withGreedy = fixture.prompts.filter { $0.greedy != nil }
        #expect(withGreedy.count >= 4)
        let vocab = model.info.vocabularySize
        for p in withGreedy {
            guard let greedy = p.greedy else { continue }
            let sequence = p.tokens + greedy
            let session = try model.makeSession(capacity: sequence.count)
            let logits = try session.forward(sequence, logits: .from(p.tokens.count - 1))
            var agree = 0
            for (j, expected) in greedy.enumerated() where argmax(logits[(j * vocab)..<((j + 1) * vocab)]) == expected {
                agree += 1
            }
            #expect(agree >= 15, "\(p.name): \(agree)/16 greedy positions agree")
            print("gemma3 greedy \(p.name): \(agree)/16")
        }
    }

    /// Past the window, decoding one position at a time gives the logits of one long prompt pass.
    @Test func decodeAgreesWithPrefillPastTheWindow() throws {
        guard let p = fixture.prompts.first(where: { $0.tokens.count > fixture.window + 8 }) else {
            Issue.record("no prompt longer than the window")
            return
        }
        let full = try model.makeSession(capacity: p.tokens.count).forward(p.tokens, logits: .last)
        let session = try model.makeSession(capacity: p.tokens.count)
        _ = try session.forward(Array(p.tokens.dropLast(4)), logits: .none)
        var last: [Float] = []
        for t in p.tokens.suffix(4) { last = try session.forward([t], logits: .last) }
        let rel = relativeL2(last, full)
        #expect(rel <= 1e-5, "decode vs prefill rel L2 \(rel)")
    }
}
