// Steps of the transformer block that every architecture's pass shares: RMSNorm over rows and over
// heads, bias rows, and RoPE (its angle table and both pair layouts GGML has), on float32 buffers.

import Foundation
import ProbityTensor

/// Which dimensions RoPE rotates together within a head (GGML's rope modes).
enum RopeLayout: Sendable, Equatable {
    /// (2j, 2j + 1): GGML "normal" (Llama, Mistral).
    case adjacentPairs
    /// (j, j + ropeDims/2): GGML "neox" (Qwen2, Qwen3, Phi-3, Gemma 3).
    case halves
}

enum BlockMath {
    /// out[i] = RMSNorm(x[i]) · weight for each `width`-wide row; `out` may be `x`.
    static func rmsNorm(_ x: UnsafeMutablePointer<Float>, rows n: Int, width: Int, weight: [Float], eps: Float,
                        into out: UnsafeMutablePointer<Float>) {
        weight.withUnsafeBufferPointer { w in
            guard let wp = w.baseAddress else { return }
            for i in 0..<n {
                Vec.rmsNorm(x + i * width, weight: wp, eps: eps, width, into: out + i * width)
            }
        }
    }

    /// RMSNorm over each head (`headDim` values) of every row, in place.
    static func headNorm(_ x: UnsafeMutablePointer<Float>, rows n: Int, heads: Int, headDim: Int, weight: [Float],
                         eps: Float) {
        weight.withUnsafeBufferPointer { w in
            guard let wp = w.baseAddress else { return }
            for h in 0..<(n * heads) {
                let v = x + h * headDim
                Vec.rmsNorm(v, weight: wp, eps: eps, headDim, into: v)
            }
        }
    }

    /// x[i] += bias for each of `n` rows as wide as the bias.
    static func addBias(_ bias: [Float], to x: UnsafeMutablePointer<Float>, rows n: Int) {
        bias.withUnsafeBufferPointer { b in
            guard let bp = b.baseAddress else { return }
            for i in 0..<n { Vec.add(x + i * bias.count, bp, bias.count) }
        }
    }

    /// Inverse RoPE frequencies scale · base^(-2j/ropeDims) / factor[j], j < ropeDims/2, in float64
    /// (`factors`: a file's per-frequency divisors, Llama 3's `rope_freqs`; nil for none).
    static func ropeInverseFrequencies(base: Double, ropeDims: Int, scale: Double = 1,
                                       factors: [Float]? = nil) -> [Double] {
        (0..<(ropeDims / 2)).map { j in
            let f = factors.map { Double($0[j]) } ?? 1
            return scale * pow(base, -2.0 * Double(j) / Double(ropeDims)) / f
        }
    }

    /// cos and sin of θ = p · inverse[j] for positions p0 ..< p0 + n, computed in float64; each row
    /// holds inverse.count values.
    static func ropeAngles(start p0: Int, rows n: Int, inverse: [Double],
                           cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
        let half = inverse.count
        for i in 0..<n {
            let p = Double(p0 + i)
            for j in 0..<half {
                let angle = p * inverse[j]
                cos[i * half + j] = Float(Foundation.cos(angle))
                sin[i * half + j] = Float(Foundation.sin(angle))
            }
        }
    }

    /// Rotates the first `ropeDims` dimensions of every head of `n` rows in place, pairing them
    /// as `layout` says; `cos`/`sin` rows hold ropeDims/2 values (ropeAngles).
    static func rope(_ x: UnsafeMutablePointer<Float>, rows n: Int, heads: Int, headDim: Int, ropeDims: Int,
                     layout: RopeLayout, cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
        let half = ropeDims / 2
        let (stride, offset) = layout == .adjacentPairs ? (2, 1) : (1, half)
        for i in 0..<n {
            let cs = cos + i * half, sn = sin + i * half
            for h in 0..<heads {
                let v = x + i * heads * headDim + h * headDim
                for j in 0..<half {
                    let ia = j * stride, ib = ia + offset
                    let a = v[ia], b = v[ib]
                    v[ia] = a * cs[j] - b * sn[j]
                    v[ib] = a * sn[j] + b * cs[j]
                }
            }
        }
    }
}
