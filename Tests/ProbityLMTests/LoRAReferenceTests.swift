// The default model with a LoRA adapter in llama.cpp's format (Tests/Fixtures/lora, written by
// scripts/make-lora-fixtures with gguf-py as convert_lora_to_gguf.py writes one) against llama.cpp's
// logits with the same adapter and an independent float64 pass; tolerances as for the base model
// (Tests/Fixtures/reference/README.md, Tests/Fixtures/lora/README.md).

import Foundation
import Testing
import ProbityFormats
import ProbityTensor
import ProbityTestSupport
@testable import ProbityLM

@Suite(.serialized) struct LoRAReferenceTests {
    static let directory = Reference.referenceDirectory.deletingLastPathComponent().appendingPathComponent("lora")

    struct Prompt {
        var name: String
        var tokens: [Int]
        var llamaTop10: [Int]
        var llamaFile: String
        var f64File: String
    }

    let prompts: [Prompt]
    let base: GGUFFile
    let adapter: LoRAAdapterFile

    init() throws {
        let data = try Data(contentsOf: Self.directory.appendingPathComponent("lora.json"))
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let entries = root["prompts"] as? [[String: Any]] else { throw FixtureError("lora.json: unexpected layout") }
        prompts = try entries.map { e in
            guard let name = e["prompt"] as? String, let tokens = e["tokens"] as? [Int],
                  let top10 = e["llama_cpp_top10"] as? [Int], let lc = e["llama_cpp_logits"] as? String,
                  let f64 = e["f64ref_logits"] as? String else { throw FixtureError("lora.json: incomplete prompt") }
            return Prompt(name: name, tokens: tokens, llamaTop10: top10, llamaFile: lc, f64File: f64)
        }
        base = try GGUFFile(path: try TestData.defaultModelPath())
        adapter = try LoRAAdapterFile(path: Self.directory.appendingPathComponent("smollm2-rank8.gguf").path)
    }

    func vector(_ file: String) throws -> [Double] {
        try NPY.read(path: Self.directory.appendingPathComponent(file).path).values
    }

    func model(scale: Float) throws -> LlamaModel {
        try LlamaModel(gguf: base, pool: ThreadPool(threads: 2),
                       adapters: try LoRAUpdates(adapters: [(adapter, scale)], base: base))
    }

    @Test func readsTheConvertersLayout() throws {
        #expect(adapter.architecture == "llama" && adapter.alpha == 16)
        #expect(adapter.pairs.count == 12)
        #expect(adapter.pairs.allSatisfy { $0.rank == 8 && $0.a.type == .f16 && $0.b.type == .f16 })
        #expect(adapter.pairs.map(\.target).contains("blk.15.ffn_up.weight"))
        try adapter.validate(against: base)
    }

    /// Float32 on exact weights: rel L2 ≤ 2e-3 against float64 and the same top-1; llama.cpp
    /// (8-bit activations, F16 adapter products) within 0.1, same top-1, top-10 overlap ≥ 8.
    @Test func matchesLlamaCppAndFloat64() throws {
        #expect(prompts.count == 4)
        let m = try model(scale: 1)
        var topChanged = 0
        for p in prompts {
            let logits = try m.makeSession(capacity: p.tokens.count).forward(p.tokens, logits: .last)
            let f64 = try vector(p.f64File), llama = try vector(p.llamaFile)
            let relF64 = relativeL2(logits, f64), relLlama = relativeL2(logits, llama)
            let overlap = Set(topK(logits, 10)).intersection(p.llamaTop10).count
            #expect(relF64 <= 2e-3, "\(p.name): rel L2 \(relF64) vs float64; \(logits.prefix(3)) vs \(f64.prefix(3))")
            #expect(argmax(logits) == argmax(f64), "\(p.name): top-1 vs float64")
            #expect(relLlama <= 0.1, "\(p.name): rel L2 \(relLlama) vs llama.cpp")
            #expect(argmax(logits) == p.llamaTop10[0], "\(p.name): top-1 vs llama.cpp")
            #expect(overlap >= 8, "\(p.name): top-10 overlap \(overlap) with llama.cpp")

            // The adapter moves the logits well beyond these tolerances, so the test can fail.
            let variant = try Reference.variants().first { $0.prompt == p.name && $0.variant == "default" }
            let baseRef = try Reference.vector(try #require(variant).f64File)
            let moved = relativeL2(logits, baseRef)
            #expect(moved > 0.02, "\(p.name): the adapter moved the logits only \(moved)")
            if argmax(logits) != argmax(baseRef) { topChanged += 1 }
            print("lora \(p.name): rel L2 vs f64 \(String(format: "%.2e", relF64)), vs llama.cpp \(String(format: "%.4f", relLlama)), top-10 overlap \(overlap), moved \(String(format: "%.3f", moved))")
        }
        #expect(topChanged >= 1, "the adapter changes the top-1 token of some prompt")
    }

    /// Decode steps (batch 1, the fused q/k/v and gate/up products plus the adapter) agree with the
    /// float64 reference as prefill does.
    @Test func decodeStepsMatchFloat64() throws {
        let m = try model(scale: 1)
        for p in prompts.prefix(2) {
            let session = try m.makeSession(capacity: p.tokens.count)
            var last: [Float] = []
            for t in p.tokens { last = try session.forward([t], logits: .last) }
            let rel = relativeL2(last, try vector(p.f64File))
            #expect(rel <= 2e-3, "\(p.name): decode rel L2 \(rel) vs float64")
        }
    }

    /// Scale 0: the base model's logits bit for bit, in prefill and in decode.
    @Test func scaleZeroIsTheBaseModel() throws {
        let zero = try model(scale: 0)
        let plain = try LlamaModel(gguf: base, pool: ThreadPool(threads: 2))
        for p in prompts.prefix(2) {
            let want = try plain.makeSession(capacity: p.tokens.count).forward(p.tokens, logits: .all)
            let got = try zero.makeSession(capacity: p.tokens.count).forward(p.tokens, logits: .all)
            #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "\(p.name): prefill")
            let a = try plain.makeSession(capacity: 3), b = try zero.makeSession(capacity: 3)
            for t in p.tokens.prefix(3) {
                let x = try a.forward([t], logits: .last), y = try b.forward([t], logits: .last)
                #expect(x.map(\.bitPattern) == y.map(\.bitPattern), "\(p.name): decode")
            }
        }
    }
}
