// A tiny Gemma 3 file built in the test (F32 weights, tied head, grouped-query attention, a window
// of 3 positions, every 2nd block global, linear RoPE scaling on the global ones, logit
// soft-capping) checked against a plain float64 forward pass written here, plus load-time errors.

import Foundation
import Testing
import ProbityFormats
import ProbityTensor
@testable import ProbityLM
import ProbityTestSupport

/// Hyperparameters and random weights of a tiny Gemma 3, and its plain float64 forward pass.
struct TinyGemma3 {
    let blocks = 3, width = 32, ffn = 24, heads = 4, kvHeads = 2, headDim = 8
    let vocab = 40, context = 64, window = 3, globalEvery = 2
    let ropeBase = 10_000.0, ropeBaseLocal = 100.0, ropeScaling = 2.0, softcap = 3.0, eps = 1e-6
    var tensors: [String: (shape: [Int], values: [Float])] = [:]

    init(seed: UInt64) {
        var rng = Xoshiro256StarStar(seed: seed)
        func random(_ n: Int, scale: Float) -> [Float] {
            (0..<n).map { _ in Float(rng.nextUnitDouble() * 2 - 1) * scale }
        }
        func matrix(_ name: String, rows: Int, cols: Int, scale: Float = 0.5) {
            tensors[name] = ([cols, rows], random(rows * cols, scale: scale))
        }
        func vector(_ name: String, _ n: Int) {
            tensors[name] = ([n], random(n, scale: 0.2).map { $0 + 1 })
        }
        matrix("token_embd.weight", rows: vocab, cols: width, scale: 0.1)
        vector("output_norm.weight", width)
        for l in 0..<blocks {
            for norm in ["attn_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm"] {
                vector("blk.\(l).\(norm).weight", width)
            }
            vector("blk.\(l).attn_q_norm.weight", headDim)
            vector("blk.\(l).attn_k_norm.weight", headDim)
            matrix("blk.\(l).attn_q.weight", rows: heads * headDim, cols: width)
            matrix("blk.\(l).attn_k.weight", rows: kvHeads * headDim, cols: width)
            matrix("blk.\(l).attn_v.weight", rows: kvHeads * headDim, cols: width)
            matrix("blk.\(l).attn_output.weight", rows: width, cols: heads * headDim)
            matrix("blk.\(l).ffn_gate.weight", rows: ffn, cols: width)
            matrix("blk.\(l).ffn_up.weight", rows: ffn, cols: width)
            matrix("blk.\(l).ffn_down.weight", rows: width, cols: ffn)
        }
    }

    /// The file; `extra` adds or (with nil) removes metadata keys.
    func gguf(extra: [String: GGUFValue?] = [:]) throws -> GGUFFile {
        var w = GGUFWriter(name: "tiny-gemma3.gguf")
        var keys: [String: GGUFValue] = [
            "general.architecture": .string("gemma3"),
            "gemma3.block_count": .uint32(UInt32(blocks)),
            "gemma3.context_length": .uint32(UInt32(context)),
            "gemma3.embedding_length": .uint32(UInt32(width)),
            "gemma3.feed_forward_length": .uint32(UInt32(ffn)),
            "gemma3.attention.head_count": .uint32(UInt32(heads)),
            "gemma3.attention.head_count_kv": .uint32(UInt32(kvHeads)),
            "gemma3.attention.key_length": .uint32(UInt32(headDim)),
            "gemma3.attention.value_length": .uint32(UInt32(headDim)),
            "gemma3.attention.sliding_window": .uint32(UInt32(window)),
            "gemma3.attention.sliding_window_pattern": .uint32(UInt32(globalEvery)),
            "gemma3.rope.freq_base": .float32(Float(ropeBase)),
            "gemma3.rope.freq_base_swa": .float32(Float(ropeBaseLocal)),
            "gemma3.rope.scaling.type": .string("linear"),
            "gemma3.rope.scaling.factor": .float32(Float(ropeScaling)),
            "gemma3.final_logit_softcapping": .float32(Float(softcap)),
            "gemma3.attention.layer_norm_rms_epsilon": .float32(Float(eps)),
        ]
        for (k, v) in extra { keys[k] = v }
        for k in keys.keys.sorted() { if let v = keys[k] { try w.set(k, v) } }
        for name in tensors.keys.sorted() {
            if let t = tensors[name] { try w.addTensor(name: name, shape: t.shape, floats: t.values) }
        }
        return try GGUFFile(bytes: w.bytes(), name: "tiny-gemma3.gguf")
    }

    private func t(_ name: String) -> [Double] { (tensors[name]?.values ?? []).map(Double.init) }

    /// y = W x for W stored (rows × cols) row-major.
    private func matvec(_ name: String, _ x: [Double]) -> [Double] {
        let w = t(name), cols = x.count, rows = w.count / cols
        return (0..<rows).map { r in (0..<cols).reduce(0.0) { $0 + w[r * cols + $1] * x[$1] } }
    }

    private func rmsNorm(_ x: [Double], _ w: [Double]) -> [Double] {
        let ms = x.reduce(0) { $0 + $1 * $1 } / Double(x.count)
        return x.indices.map { x[$0] / (ms + eps).squareRoot() * w[$0] }
    }

    /// RMSNorm of each head, then RoPE on the pairs (j, j + headDim/2).
    private func normRope(_ v: [Double], heads n: Int, norm: String, position p: Int, global: Bool) -> [Double] {
        var out: [Double] = []
        let half = headDim / 2
        for h in 0..<n {
            let head = rmsNorm(Array(v[(h * headDim)..<((h + 1) * headDim)]), t(norm))
            var r = head
            for j in 0..<half {
                let base = global ? ropeBase : ropeBaseLocal
                let theta = Double(p) * pow(base, -2 * Double(j) / Double(headDim)) / (global ? ropeScaling : 1)
                r[j] = head[j] * cos(theta) - head[j + half] * sin(theta)
                r[j + half] = head[j] * sin(theta) + head[j + half] * cos(theta)
            }
            out += r
        }
        return out
    }

    /// Logits of every position, in float64.
    func reference(_ tokens: [Int]) -> [[Double]] {
        let embd = t("token_embd.weight")
        var xs = tokens.map { Array(embd[($0 * width)..<(($0 + 1) * width)]).map { $0 * Double(width).squareRoot() } }
        for l in 0..<blocks {
            let global = (l + 1) % globalEvery == 0
            var keys: [[Double]] = [], values: [[Double]] = [], attnOut: [[Double]] = []
            for (p, x) in xs.enumerated() {
                let xn = rmsNorm(x, t("blk.\(l).attn_norm.weight"))
                let q = normRope(matvec("blk.\(l).attn_q.weight", xn), heads: heads, norm: "blk.\(l).attn_q_norm.weight",
                                 position: p, global: global)
                let k = normRope(matvec("blk.\(l).attn_k.weight", xn), heads: kvHeads, norm: "blk.\(l).attn_k_norm.weight",
                                 position: p, global: global)
                keys.append(k); values.append(matvec("blk.\(l).attn_v.weight", xn))
                let first = global ? 0 : max(0, p - window + 1)
                var out = [Double](repeating: 0, count: heads * headDim)
                for h in 0..<heads {
                    let g = h / (heads / kvHeads)
                    let scores = (first...p).map { s in
                        (0..<headDim).reduce(0.0) { $0 + q[h * headDim + $1] * keys[s][g * headDim + $1] } / Double(headDim).squareRoot()
                    }
                    let m = scores.max() ?? 0
                    let e = scores.map { exp($0 - m) }
                    let z = e.reduce(0, +)
                    for (i, s) in (first...p).enumerated() {
                        for d in 0..<headDim { out[h * headDim + d] += e[i] / z * values[s][g * headDim + d] }
                    }
                }
                attnOut.append(out)
            }
            for p in xs.indices {
                let o = rmsNorm(matvec("blk.\(l).attn_output.weight", attnOut[p]), t("blk.\(l).post_attention_norm.weight"))
                xs[p] = zip(xs[p], o).map(+)
                let xn = rmsNorm(xs[p], t("blk.\(l).ffn_norm.weight"))
                let gate = matvec("blk.\(l).ffn_gate.weight", xn), up = matvec("blk.\(l).ffn_up.weight", xn)
                let act = zip(gate, up).map { g, u in
                    0.5 * g * (1 + tanh((2 / Double.pi).squareRoot() * (g + 0.044715 * g * g * g))) * u
                }
                let d = rmsNorm(matvec("blk.\(l).ffn_down.weight", act), t("blk.\(l).post_ffw_norm.weight"))
                xs[p] = zip(xs[p], d).map(+)
            }
        }
        return xs.map { x in
            matvec("token_embd.weight", rmsNorm(x, t("output_norm.weight"))).map { softcap * tanh($0 / softcap) }
        }
    }
}

@Suite struct TinyGemma3Tests {
    private let tiny = TinyGemma3(seed: 11)
    private let tokens = [3, 17, 5, 31, 0, 9, 9, 22, 14, 39, 1, 8]

    @Test func matchesPlainFloat64ForwardPass() throws {
        let model = try Gemma3Model(gguf: try tiny.gguf(), pool: ThreadPool(threads: 2))
        #expect(model.config.finalLogitSoftcap == 3 && model.config.ropeScaleGlobal == 0.5)
        let ours = try model.makeSession(capacity: tokens.count).forward(tokens, logits: .all)
        let ref = tiny.reference(tokens)
        for p in tokens.indices {
            let row = Array(ours[(p * tiny.vocab)..<((p + 1) * tiny.vocab)])
            let rel = relativeL2(row, ref[p])
            #expect(rel <= 1e-5, "position \(p): rel L2 \(rel); first values \(row.prefix(3)) vs \(ref[p].prefix(3))")
        }
    }

    @Test func decodingOnePositionAtATimeMatches() throws {
        let model = try Gemma3Model(gguf: try tiny.gguf(), pool: ThreadPool(threads: 2))
        let session = try model.makeSession(capacity: tokens.count)
        let ref = tiny.reference(tokens)
        for (p, token) in tokens.enumerated() {
            let row = try session.forward([token], logits: .last)
            #expect(relativeL2(row, ref[p]) <= 1e-5, "position \(p)")
        }
    }

    @Test func badMetadataIsNamed() throws {
        let pool = ThreadPool(threads: 1)
        #expect(throws: ModelError.missingMetadata(key: "gemma3.attention.sliding_window", path: "tiny-gemma3.gguf")) {
            try Gemma3Model(gguf: try tiny.gguf(extra: ["gemma3.attention.sliding_window": nil]), pool: pool)
        }
        #expect(throws: ModelError.badMetadata(key: "gemma3.rope.scaling.type", expected: "'none' or 'linear'",
                                              found: "'yarn'", path: "tiny-gemma3.gguf")) {
            try Gemma3Model(gguf: try tiny.gguf(extra: ["gemma3.rope.scaling.type": .string("yarn")]), pool: pool)
        }
        #expect(throws: ModelError.self) {
            try Gemma3Model(gguf: try tiny.gguf(extra: ["gemma3.attn_logit_softcapping": .float32(50)]), pool: pool)
        }
        #expect(throws: ModelError.badMetadata(key: "gemma3.attention.sliding_window", expected: "a positive number of positions",
                                              found: "0", path: "tiny-gemma3.gguf")) {
            try Gemma3Model(gguf: try tiny.gguf(extra: ["gemma3.attention.sliding_window": .uint32(0)]), pool: pool)
        }
        #expect(throws: ModelError.missingTensor("blk.1.post_ffw_norm.weight", path: "tiny-gemma3.gguf")) {
            var broken = tiny
            broken.tensors["blk.1.post_ffw_norm.weight"] = nil
            _ = try Gemma3Model(gguf: try broken.gguf(), pool: pool)
        }
    }
}
