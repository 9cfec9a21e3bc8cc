// A tiny Llama-architecture file built in the test (F32 weights, q/k/v biases, untied output head,
// grouped-query attention, partial RoPE) checked against a plain float64 forward pass written here,
// plus load-time errors: unsupported architecture, wrong shape, a type we cannot compute with.

import Foundation
import Testing
import ProbityFormats
import ProbityTensor
@testable import ProbityLM
import ProbityTestSupport

/// Hyperparameters and random weights of a tiny model, and its plain float64 forward pass.
struct TinyLlama {
    let blocks = 2, width = 32, ffn = 24, heads = 4, kvHeads = 2, headDim = 8, ropeDims = 4
    let vocab = 32, context = 64
    let ropeBase = 10_000.0, eps = 1e-5
    var tensors: [String: (shape: [Int], values: [Float])] = [:]
    /// Added in float64 to a matrix's weights by the reference pass only (a LoRA adapter's B·A, merged).
    var deltas: [String: [Double]] = [:]

    init(seed: UInt64) {
        var rng = Xoshiro256StarStar(seed: seed)
        func random(_ n: Int, scale: Float) -> [Float] {
            (0..<n).map { _ in Float(rng.nextUnitDouble() * 2 - 1) * scale }
        }
        func matrix(_ name: String, rows: Int, cols: Int) {
            tensors[name] = ([cols, rows], random(rows * cols, scale: 0.5))
        }
        func vector(_ name: String, _ n: Int, around: Float = 0) {
            tensors[name] = ([n], random(n, scale: 0.2).map { $0 + around })
        }
        matrix("token_embd.weight", rows: vocab, cols: width)
        matrix("output.weight", rows: vocab, cols: width)
        vector("output_norm.weight", width, around: 1)
        for l in 0..<blocks {
            vector("blk.\(l).attn_norm.weight", width, around: 1)
            vector("blk.\(l).ffn_norm.weight", width, around: 1)
            matrix("blk.\(l).attn_q.weight", rows: heads * headDim, cols: width)
            matrix("blk.\(l).attn_k.weight", rows: kvHeads * headDim, cols: width)
            matrix("blk.\(l).attn_v.weight", rows: kvHeads * headDim, cols: width)
            vector("blk.\(l).attn_q.bias", heads * headDim)
            vector("blk.\(l).attn_k.bias", kvHeads * headDim)
            vector("blk.\(l).attn_v.bias", kvHeads * headDim)
            matrix("blk.\(l).attn_output.weight", rows: width, cols: heads * headDim)
            matrix("blk.\(l).ffn_gate.weight", rows: ffn, cols: width)
            matrix("blk.\(l).ffn_up.weight", rows: ffn, cols: width)
            matrix("blk.\(l).ffn_down.weight", rows: width, cols: ffn)
        }
    }

    func gguf(architecture: String = "llama", replacing: [String: (GGMLType, [Int], [UInt8])] = [:]) throws -> GGUFFile {
        var w = GGUFWriter(name: "tiny.gguf")
        try w.set("general.architecture", .string(architecture))
        try w.set("llama.block_count", .uint32(UInt32(blocks)))
        try w.set("llama.context_length", .uint32(UInt32(context)))
        try w.set("llama.embedding_length", .uint32(UInt32(width)))
        try w.set("llama.feed_forward_length", .uint32(UInt32(ffn)))
        try w.set("llama.attention.head_count", .uint32(UInt32(heads)))
        try w.set("llama.attention.head_count_kv", .uint32(UInt32(kvHeads)))
        try w.set("llama.rope.dimension_count", .uint32(UInt32(ropeDims)))
        try w.set("llama.rope.freq_base", .float32(Float(ropeBase)))
        try w.set("llama.attention.layer_norm_rms_epsilon", .float32(Float(eps)))
        for name in tensors.keys.sorted() {
            if let (type, shape, data) = replacing[name] {
                try w.addTensor(name: name, type: type, shape: shape, data: data)
            } else if let t = tensors[name] {
                try w.addTensor(name: name, shape: t.shape, floats: t.values)
            }
        }
        return try GGUFFile(bytes: w.bytes(), name: "tiny.gguf")
    }

    private func t(_ name: String) -> [Double] {
        let values: [Double] = (tensors[name]?.values ?? []).map { Double($0) }
        guard let d = deltas[name] else { return values }
        return zip(values, d).map(+)
    }

    /// y = W x for W stored (rows × cols) row-major.
    private func matvec(_ name: String, _ x: [Double]) -> [Double] {
        let w = t(name), cols = x.count, rows = w.count / cols
        return (0..<rows).map { r in (0..<cols).reduce(0.0) { $0 + w[r * cols + $1] * x[$1] } }
    }

    private func rmsNorm(_ x: [Double], _ weight: String) -> [Double] {
        let w = t(weight)
        let ms = x.reduce(0) { $0 + $1 * $1 } / Double(x.count)
        return x.indices.map { x[$0] / (ms + eps).squareRoot() * w[$0] }
    }

    private func rope(_ v: inout [Double], position p: Int, heads n: Int) {
        for h in 0..<n {
            for j in 0..<(ropeDims / 2) {
                let theta = Double(p) * pow(ropeBase, -2 * Double(j) / Double(ropeDims))
                let a = v[h * headDim + 2 * j], b = v[h * headDim + 2 * j + 1]
                v[h * headDim + 2 * j] = a * cos(theta) - b * sin(theta)
                v[h * headDim + 2 * j + 1] = a * sin(theta) + b * cos(theta)
            }
        }
    }

    /// Logits of every position, in float64.
    func reference(_ tokens: [Int]) -> [[Double]] {
        let embd = t("token_embd.weight")
        var xs = tokens.map { Array(embd[($0 * width)..<(($0 + 1) * width)]) }
        for l in 0..<blocks {
            var keys: [[Double]] = [], values: [[Double]] = []
            var attnOut: [[Double]] = []
            for (p, x) in xs.enumerated() {
                let xn = rmsNorm(x, "blk.\(l).attn_norm.weight")
                var q = zip(matvec("blk.\(l).attn_q.weight", xn), t("blk.\(l).attn_q.bias")).map(+)
                var k = zip(matvec("blk.\(l).attn_k.weight", xn), t("blk.\(l).attn_k.bias")).map(+)
                let v = zip(matvec("blk.\(l).attn_v.weight", xn), t("blk.\(l).attn_v.bias")).map(+)
                rope(&q, position: p, heads: heads)
                rope(&k, position: p, heads: kvHeads)
                keys.append(k); values.append(v)
                var out = [Double](repeating: 0, count: heads * headDim)
                for h in 0..<heads {
                    let g = h / (heads / kvHeads)
                    let scores = (0...p).map { s in
                        (0..<headDim).reduce(0.0) { $0 + q[h * headDim + $1] * keys[s][g * headDim + $1] } / Double(headDim).squareRoot()
                    }
                    let m = scores.max() ?? 0
                    let e = scores.map { exp($0 - m) }
                    let z = e.reduce(0, +)
                    for s in 0...p {
                        for d in 0..<headDim { out[h * headDim + d] += e[s] / z * values[s][g * headDim + d] }
                    }
                }
                attnOut.append(out)
            }
            for p in xs.indices {
                xs[p] = zip(xs[p], matvec("blk.\(l).attn_output.weight", attnOut[p])).map(+)
                let xn = rmsNorm(xs[p], "blk.\(l).ffn_norm.weight")
                let gate = matvec("blk.\(l).ffn_gate.weight", xn), up = matvec("blk.\(l).ffn_up.weight", xn)
                let act = zip(gate, up).map { $0 / (1 + exp(-$0)) * $1 }
                xs[p] = zip(xs[p], matvec("blk.\(l).ffn_down.weight", act)).map(+)
            }
        }
        return xs.map { matvec("output.weight", rmsNorm($0, "output_norm.weight")) }
    }
}

@Suite struct TinyLlamaTests {
    private let tiny = TinyLlama(seed: 7)
    private let tokens = [3, 17, 5, 31, 0, 9, 9, 22, 14]

    @Test func matchesPlainFloat64ForwardPass() throws {
        let model = try LlamaModel(gguf: try tiny.gguf(), pool: ThreadPool(threads: 2))
        let ours = try model.makeSession(capacity: tokens.count).forward(tokens, logits: .all)
        let ref = tiny.reference(tokens)
        for p in tokens.indices {
            let row = Array(ours[(p * tiny.vocab)..<((p + 1) * tiny.vocab)])
            let rel = relativeL2(row, ref[p])
            #expect(rel <= 1e-5, "position \(p): rel L2 \(rel); first values \(row.prefix(3)) vs \(ref[p].prefix(3))")
        }
    }

    @Test func decodeStepsMatchTheReference() throws {
        let model = try LlamaModel(gguf: try tiny.gguf(), pool: ThreadPool(threads: 1))
        let session = try model.makeSession(capacity: tokens.count)
        let ref = tiny.reference(tokens)
        for (p, token) in tokens.enumerated() {
            let row = try session.forward([token], logits: .last)
            #expect(relativeL2(row, ref[p]) <= 1e-5, "position \(p)")
        }
    }

    @Test func unsupportedArchitectureIsNamed() throws {
        let gguf = try tiny.gguf(architecture: "rwkv6")
        #expect(throws: ModelError.unsupportedArchitecture("rwkv6", supported: ["gemma3", "llama", "phi3", "qwen2", "qwen3"])) {
            try ModelRegistry.load(gguf, pool: ThreadPool(threads: 1))
        }
    }

    @Test func wrongShapeNamesTheTensor() throws {
        let bad = [Float](repeating: 0, count: 32 * 4)
        let data = bad.withUnsafeBytes { Array($0) }
        let gguf = try tiny.gguf(replacing: ["blk.1.attn_k.weight": (.f32, [32, 4], data)])
        #expect(throws: ModelError.tensorShape("blk.1.attn_k.weight", expected: [32, 16], found: [32, 4], path: "tiny.gguf")) {
            try LlamaModel(gguf: gguf, pool: ThreadPool(threads: 1))
        }
    }

    @Test func typeWithoutKernelsIsNamedAtLoad() throws {
        // MXFP4: a valid type in a valid file (24 rows of one 17-byte block), but no kernels here.
        let data = [UInt8](repeating: 0, count: 24 * 17)
        let gguf = try tiny.gguf(replacing: ["blk.0.ffn_up.weight": (.mxfp4, [32, 24], data)])
        let supported = ["F32", "F16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
                         "IQ4_NL", "IQ4_XS", "BF16"]
        #expect(throws: ModelError.unsupportedTensorType("blk.0.ffn_up.weight", type: "MXFP4", supported: supported,
                                                         path: "tiny.gguf")) {
            try LlamaModel(gguf: gguf, pool: ThreadPool(threads: 1))
        }
        let message = ModelError.unsupportedTensorType("blk.0.ffn_up.weight", type: "MXFP4", supported: supported,
                                                       path: "tiny.gguf").description
        #expect(message == "tiny.gguf: tensor blk.0.ffn_up.weight has type MXFP4, which Probity cannot compute with;"
                + " expected one of F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, BF16")
    }
}
