// LoRA adapters on the tiny Llama model: adapted logits against the float64 pass with B·A merged
// into the weights, several adapters adding up, scale 0 bit for bit, and every malformed or
// mismatched adapter refused with a message naming the file, the tensor, expected and found.

import Foundation
import Testing
import ProbityFormats
import ProbityTensor
@testable import ProbityLM
import ProbityTestSupport

/// Random LoRA factors for the tiny model's matrices, written into adapter files with GGUFWriter.
struct TinyAdapter {
    var factors: [LoRAFactors] = []
    var alpha: Float

    /// Factors of `rank` for each target, seeded; B is large enough to move the logits.
    init(tiny: TinyLlama, targets: [String], rank: Int, alpha: Float, seed: UInt64) {
        var rng = Xoshiro256StarStar(seed: seed)
        func random(_ n: Int, _ scale: Float) -> [Float] { (0..<n).map { _ in Float(rng.nextUnitDouble() * 2 - 1) * scale } }
        self.alpha = alpha
        for target in targets {
            guard let shape = tiny.tensors[target]?.shape else { continue }
            let (inputs, outputs) = (shape[0], shape[1])
            factors.append(LoRAFactors(target: target, rank: rank, inputs: inputs, outputs: outputs,
                                       a: random(rank * inputs, 0.4), b: random(outputs * rank, 0.4)))
        }
    }

    func bytes(type: GGMLType = .f32, architecture: String = "llama") throws -> [UInt8] {
        try GGUFWriter.loraAdapter(architecture: architecture, alpha: alpha, factors: factors, type: type).bytes()
    }

    func file(_ name: String = "adapter.gguf", type: GGMLType = .f32) throws -> LoRAAdapterFile {
        try LoRAAdapterFile(try GGUFFile(bytes: try bytes(type: type), name: name))
    }

    /// scale · (alpha / rank) · B·A per target (alpha 0: scale · B·A), row-major outputs × inputs, float64.
    func merged(scale: Float) -> [String: [Double]] {
        var out: [String: [Double]] = [:]
        for f in factors {
            let s = Double(alpha != 0 ? scale * alpha / Float(f.rank) : scale)
            var d = [Double](repeating: 0, count: f.outputs * f.inputs)
            for o in 0..<f.outputs {
                for c in 0..<f.inputs {
                    var sum = 0.0
                    for r in 0..<f.rank { sum += Double(f.b[o * f.rank + r]) * Double(f.a[r * f.inputs + c]) }
                    d[o * f.inputs + c] = s * sum
                }
            }
            out[f.target] = d
        }
        return out
    }
}

@Suite struct LoRATests {
    let tiny = TinyLlama(seed: 7)
    let tokens = [3, 17, 5, 31, 0, 9, 9, 22, 14]
    static let everyMatrix = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
        .flatMap { m in (0..<2).map { "blk.\($0).\(m).weight" } } + ["output.weight"]

    func model(_ adapters: [(TinyAdapter, Float)], threads: Int = 2) throws -> LlamaModel {
        let base = try tiny.gguf()
        let files = try adapters.enumerated().map { (i, a) in (file: try a.0.file("a\(i).gguf"), scale: a.1) }
        return try LlamaModel(gguf: base, pool: ThreadPool(threads: threads),
                              adapters: try LoRAUpdates(adapters: files, base: base))
    }

    func rows(_ logits: [Float]) -> [[Float]] {
        stride(from: 0, to: logits.count, by: tiny.vocab).map { Array(logits[$0..<($0 + tiny.vocab)]) }
    }

    /// Two adapters (one with alpha 0) on every matrix and the untied head: prefill and decode
    /// within 1e-5 rel L2 of float64 with Σ scale·(alpha/rank)·B·A merged into the weights.
    @Test func matchesFloat64WithTheUpdatesMerged() throws {
        let first = TinyAdapter(tiny: tiny, targets: Self.everyMatrix, rank: 4, alpha: 8, seed: 1)
        let second = TinyAdapter(tiny: tiny, targets: ["blk.1.attn_v.weight", "blk.0.ffn_down.weight"], rank: 3,
                                 alpha: 0, seed: 2)
        var merged = tiny
        merged.deltas = first.merged(scale: 0.7).merging(second.merged(scale: -1.5)) { zip($0, $1).map(+) }
        let ref = merged.reference(tokens)
        let base = tiny.reference(tokens)

        let m = try model([(first, 0.7), (second, -1.5)])
        let prefill = rows(try m.makeSession(capacity: tokens.count).forward(tokens, logits: .all))
        let session = try m.makeSession(capacity: tokens.count)
        for p in tokens.indices {
            let rel = relativeL2(prefill[p], ref[p])
            #expect(rel <= 1e-5, "prefill position \(p): rel L2 \(rel); \(prefill[p].prefix(3)) vs \(ref[p].prefix(3))")
            let step = try session.forward([tokens[p]], logits: .last)
            #expect(relativeL2(step, ref[p]) <= 1e-5, "decode position \(p)")
            #expect(relativeL2(ref[p].map(Float.init), base[p]) > 0.05, "the adapters must change the logits")
        }
    }

    @Test func factorsStoredAsF16AndBF16AreReadExactly() throws {
        let a = TinyAdapter(tiny: tiny, targets: ["blk.0.attn_q.weight"], rank: 2, alpha: 4, seed: 3)
        for type in [GGMLType.f16, .bf16] {
            let f = try a.file(type: type)
            let pair = try #require(f.pairs.first)
            let round: (Float) -> Float = type == .f16
                ? { Dequantize.halfToFloat(HalfPrecision.halfBits($0)) }
                : { Dequantize.bfloat16ToFloat(HalfPrecision.bfloat16Bits($0)) }
            #expect(try f.floats(pair.a) == a.factors[0].a.map(round))
            #expect(try f.floats(pair.b) == a.factors[0].b.map(round))
            #expect(pair.rank == 2 && pair.inputs == 32 && pair.outputs == 32)
        }
    }

    @Test func scaleZeroIsTheBaseModelBitForBit() throws {
        let a = TinyAdapter(tiny: tiny, targets: Self.everyMatrix, rank: 4, alpha: 8, seed: 1)
        let base = try LlamaModel(gguf: try tiny.gguf(), pool: ThreadPool(threads: 2))
        let zero = try model([(a, 0)])
        let want = try base.makeSession(capacity: tokens.count).forward(tokens, logits: .all)
        let got = try zero.makeSession(capacity: tokens.count).forward(tokens, logits: .all)
        #expect(got.map(\.bitPattern) == want.map(\.bitPattern))
    }

    // MARK: refused adapters

    func expectRefused(_ bytes: [UInt8], _ message: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        do {
            let file = try LoRAAdapterFile(try GGUFFile(bytes: bytes, name: "bad.gguf"))
            let base = try tiny.gguf()
            _ = try LlamaModel(gguf: base, pool: ThreadPool(threads: 1),
                               adapters: try LoRAUpdates(adapters: [(file, 1)], base: base))
            Issue.record("accepted an adapter that should fail with: \(message)", sourceLocation: sourceLocation)
        } catch let e as FormatError {
            #expect(e.description == message, sourceLocation: sourceLocation)
        }
    }

    func adapterBytes(_ edit: (inout GGUFWriter) throws -> Void) throws -> [UInt8] {
        var w = GGUFWriter(name: "bad.gguf")
        try edit(&w)
        return w.bytes()
    }

    func header(_ w: inout GGUFWriter, type: String = "adapter", alpha: GGUFValue? = .float32(8)) throws {
        try w.set("general.type", .string(type))
        try w.set("general.architecture", .string("llama"))
        try w.set("adapter.type", .string("lora"))
        if let alpha { try w.set("adapter.lora.alpha", alpha) }
    }

    func pair(_ w: inout GGUFWriter, _ target: String, a: [Int], b: [Int]) throws {
        try w.addTensor(name: target + ".lora_a", shape: a, floats: [Float](repeating: 0.1, count: a.reduce(1, *)))
        try w.addTensor(name: target + ".lora_b", shape: b, floats: [Float](repeating: 0.1, count: b.reduce(1, *)))
    }

    @Test func rankMismatchIsRefused() throws {
        try expectRefused(try adapterBytes { w in
            try header(&w)
            try pair(&w, "blk.0.attn_q.weight", a: [32, 4], b: [3, 32])
        }, "bad.gguf: LoRA adapter: tensor 'blk.0.attn_q.weight.lora_b': expected rank 4 (lora_a's shape [32, 4] is [inputs, rank], lora_b's [rank, outputs] in ggml order), found shape [3, 32], rank 3")
    }

    @Test func missingBaseTensorIsRefused() throws {
        try expectRefused(try adapterBytes { w in
            try header(&w)
            try pair(&w, "blk.5.attn_q.weight", a: [32, 4], b: [4, 32])
        }, "bad.gguf: LoRA adapter: tensor 'blk.5.attn_q.weight.lora_a': expected a base tensor 'blk.5.attn_q.weight' in tiny.gguf, found none (is the adapter for another model?)")
    }

    @Test func wrongShapeIsRefused() throws {
        // attn_k maps 32 inputs to 16 outputs; this pair claims 32 outputs.
        try expectRefused(try adapterBytes { w in
            try header(&w)
            try pair(&w, "blk.1.attn_k.weight", a: [32, 4], b: [4, 32])
        }, "bad.gguf: LoRA adapter: tensor 'blk.1.attn_k.weight.lora_a': expected lora_a [inputs, rank] and lora_b [rank, outputs] (ggml order) to fit 'blk.1.attn_k.weight' of shape [32, 16], found lora_a [32, 4], lora_b [4, 32]")
    }

    @Test func transposedFactorsAreRefused() throws {
        try expectRefused(try adapterBytes { w in
            try header(&w)
            try pair(&w, "blk.0.ffn_up.weight", a: [4, 32], b: [24, 4])
        }, "bad.gguf: LoRA adapter: tensor 'blk.0.ffn_up.weight.lora_b': expected rank 32 (lora_a's shape [4, 32] is [inputs, rank], lora_b's [rank, outputs] in ggml order), found shape [24, 4], rank 24")
    }

    @Test func wrongGeneralTypeIsRefused() throws {
        try expectRefused(try adapterBytes { w in
            try header(&w, type: "model")
            try pair(&w, "blk.0.attn_q.weight", a: [32, 4], b: [4, 32])
        }, "bad.gguf: metadata 'general.type': expected 'adapter' (a LoRA adapter file), found 'model'")
        // A model file handed as an adapter has no general.type at all.
        try expectRefused(try adapterBytes { w in
            try w.set("general.architecture", .string("llama"))
        }, "bad.gguf: missing metadata key 'general.type'")
    }

    @Test func badAlphaIsRefused() throws {
        for (alpha, found) in [(GGUFValue.float32(.nan), "nan (float32)"), (.float32(.infinity), "inf (float32)"),
                               (.float64(16), "16.0 (float64)"), (.string("16"), "\"16\" (string)")] {
            do {
                _ = try LoRAAdapterFile(try GGUFFile(bytes: try adapterBytes { w in
                    try header(&w, alpha: alpha)
                    try pair(&w, "blk.0.attn_q.weight", a: [32, 4], b: [4, 32])
                }, name: "bad.gguf"))
                Issue.record("accepted alpha \(alpha)")
            } catch let e as FormatError {
                guard case let .wrongValueType(path, key, expected, f) = e else { Issue.record("\(e)"); continue }
                #expect(path == "bad.gguf" && key == "adapter.lora.alpha" && expected == "a finite float32")
                #expect(f == found, "alpha \(alpha): \(e)")
            }
        }
        try expectRefused(try adapterBytes { w in
            try header(&w, alpha: nil)
            try pair(&w, "blk.0.attn_q.weight", a: [32, 4], b: [4, 32])
        }, "bad.gguf: missing metadata key 'adapter.lora.alpha'")
    }

    @Test func incompleteOrForeignTensorsAreRefused() throws {
        try expectRefused(try adapterBytes { w in
            try header(&w)
            try w.addTensor(name: "blk.0.attn_q.weight.lora_a", shape: [32, 4], floats: [Float](repeating: 0, count: 128))
        }, "bad.gguf: LoRA adapter: tensor 'blk.0.attn_q.weight.lora_a': expected its partner 'blk.0.attn_q.weight.lora_b', found none")
        try expectRefused(try adapterBytes { w in
            try header(&w)
            try w.addTensor(name: "blk.0.attn_norm.weight", shape: [32], floats: [Float](repeating: 1, count: 32))
        }, "bad.gguf: LoRA adapter: tensor 'blk.0.attn_norm.weight': expected a name ending in '.lora_a' or '.lora_b', found another suffix")
        try expectRefused(try adapterBytes { w in try header(&w) },
                          "bad.gguf: LoRA adapter: expected at least one .lora_a/.lora_b tensor pair, found no tensors")
        try expectRefused(try adapterBytes { w in
            try header(&w)
            try pair(&w, "token_embd.weight", a: [32, 4], b: [4, 32])
        }, "bad.gguf: tensor 'token_embd.weight.lora_a': LoRA on the token embedding is not supported")
    }

    @Test func architectureMismatchIsRefused() throws {
        let a = TinyAdapter(tiny: tiny, targets: ["blk.0.attn_q.weight"], rank: 2, alpha: 4, seed: 3)
        try expectRefused(try a.bytes(architecture: "qwen2"),
                          "bad.gguf: LoRA adapter: expected general.architecture 'llama' (the base model tiny.gguf), found 'qwen2'")
    }

    @Test func adapterArgumentsParse() throws {
        #expect(try AdapterRequest.parse("a.gguf") == AdapterRequest(path: "a.gguf", scale: 1))
        #expect(try AdapterRequest.parse("dir/a.gguf:0.5") == AdapterRequest(path: "dir/a.gguf", scale: 0.5))
        #expect(try AdapterRequest.parse("c:/x.gguf") == AdapterRequest(path: "c:/x.gguf", scale: 1))
        #expect(throws: ModelError.adapterArgument(":2")) { try AdapterRequest.parse(":2") }
        #expect(throws: ModelError.adapterArgument("a.gguf:inf")) { try AdapterRequest.parse("a.gguf:inf") }
    }
}
