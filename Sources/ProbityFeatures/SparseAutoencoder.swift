// A sparse autoencoder's weights and math, following SAELens's inference SAEs (sae_lens/saes/*.py):
// input scaled (normalize_activations), b_dec subtracted, pre = x·W_enc + b_enc, the activation
// function, then x̂ = (f·W_dec + b_dec) / scale. Encoding a step's positions is one sgemm.

import ProbityTensor

/// An SAE held in float32: `W_enc [d_in, d_sae]`, `b_enc [d_sae]`, `W_dec [d_sae, d_in]`,
/// `b_dec [d_in]`, and for JumpReLU `threshold [d_sae]`, all row-major as SAELens stores them.
public final class SparseAutoencoder: Sendable {
    public let config: SAEConfig
    public let wEnc: [Float]      // (dIn, dSAE)
    public let bEnc: [Float]      // (dSAE)
    public let wDec: [Float]      // (dSAE, dIn)
    public let bDec: [Float]      // (dIn)
    public let threshold: [Float]? // (dSAE), JumpReLU only

    public var dIn: Int { config.dIn }
    public var dSAE: Int { config.dSAE }

    /// Builds an SAE from its weights, checking every shape and that every value is finite.
    /// `path` names the weights in errors.
    public init(config: SAEConfig, wEnc: [Float], bEnc: [Float], wDec: [Float], bDec: [Float],
                threshold: [Float]?, path: String = "<memory>") throws {
        let d = config.dIn, n = config.dSAE
        let expected: [(String, [Float]?, Int, [Int])] = [
            ("W_enc", wEnc, d * n, [d, n]), ("b_enc", bEnc, n, [n]), ("W_dec", wDec, n * d, [n, d]),
            ("b_dec", bDec, d, [d]),
        ]
        for (name, values, count, shape) in expected {
            guard let values, values.count == count else {
                throw FeatureError.tensorShape(path: path, name: name, expected: shape, found: [values?.count ?? 0])
            }
        }
        if case .jumpReLU = config.architecture {
            guard let threshold else { throw FeatureError.missingTensor(path: path, name: "threshold") }
            guard threshold.count == n else {
                throw FeatureError.tensorShape(path: path, name: "threshold", expected: [n], found: [threshold.count])
            }
        }
        for (name, values) in [("W_enc", wEnc), ("b_enc", bEnc), ("W_dec", wDec), ("b_dec", bDec), ("threshold", threshold ?? [])] {
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw FeatureError.nonFinite(path: path, name: name, index: bad)
            }
        }
        self.config = config
        self.wEnc = wEnc
        self.bEnc = bEnc
        self.wDec = wDec
        self.bDec = bDec
        self.threshold = config.architecture == .jumpReLU ? threshold : nil
    }

    /// The input scale of one position: SAELens multiplies the input by it before encoding and
    /// divides the reconstruction by it after decoding.
    func inputScale(_ x: UnsafePointer<Float>) -> Float {
        switch config.normalization {
        case .none, .expectedAverageOnlyIn(nil): return 1
        case .expectedAverageOnlyIn(let s?): return s
        case .constantNormRescale:
            var ss: Float = 0
            for j in 0..<dIn { ss += x[j] * x[j] }
            // A zero vector has no direction to rescale; leave it as is rather than divide by 0.
            return ss > 0 ? Float(Double(dIn).squareRoot()) / ss.squareRoot() : 1
        }
    }

    /// Encodes `count` positions (`x`: count × d_in, row-major) at once.
    /// - Complexity: one (count × d_in) · (d_in × d_sae) sgemm, plus O(count · d_sae) for the
    ///   activation (O(count · d_sae · log k) for TopK).
    public func encode(_ x: UnsafePointer<Float>, count: Int) -> SAEEncoding {
        let d = dIn, n = dSAE
        var scales = [Float](repeating: 1, count: count)
        var input = [Float](repeating: 0, count: count * d)   // (count, dIn)
        var pre = [Float](repeating: 0, count: count * n)     // (count, dSAE)
        let bias: Float = config.applyBDecToInput ? 1 : 0
        for r in 0..<count {
            let row = x + r * d
            let c = inputScale(row)
            scales[r] = c
            for j in 0..<d { input[r * d + j] = c * row[j] - bias * bDec[j] }
        }
        for r in 0..<count {
            for i in 0..<n { pre[r * n + i] = bEnc[i] }
        }
        if count > 0 {
            input.withUnsafeBufferPointer { a in
                wEnc.withUnsafeBufferPointer { b in
                    pre.withUnsafeMutableBufferPointer { c in
                        BLAS.sgemm(m: count, n: n, k: d, a: a.baseAddress!, lda: d,
                                   b: b.baseAddress!, ldb: n, beta: 1, c: c.baseAddress!, ldc: n)
                    }
                }
            }
        }
        for r in 0..<count {
            pre.withUnsafeMutableBufferPointer { p in activate(p.baseAddress! + r * n) }
        }
        return SAEEncoding(count: count, dSAE: n, latents: pre, scales: scales)
    }

    /// Applies the activation function in place to one position's pre-activations.
    func activate(_ f: UnsafeMutablePointer<Float>) {
        let n = dSAE
        switch config.architecture {
        case .standard:
            for i in 0..<n { f[i] = max(f[i], 0) }
        case .jumpReLU:
            // SAELens: relu(pre) · (pre > threshold); a pre-activation equal to the threshold is off.
            let t = threshold ?? []
            for i in 0..<n { f[i] = f[i] > t[i] && f[i] > 0 ? f[i] : 0 }
        case .topK(let k):
            let keep = Vec.topIndices(UnsafeBufferPointer(start: f, count: n), k: k)
            var kept = [Float](repeating: 0, count: keep.count)
            for (slot, i) in keep.enumerated() { kept[slot] = max(f[i], 0) }
            for i in 0..<n { f[i] = 0 }
            for (slot, i) in keep.enumerated() { f[i] = kept[slot] }
        }
    }

    /// Decodes one position's latents: x̂ = (f·W_dec + b_dec) / scale, into `out` (d_in floats).
    /// - Complexity: O(d_in · nonzero latents): row by row when few are active, one gemv when many.
    public func decode(_ f: UnsafePointer<Float>, scale: Float, into out: UnsafeMutablePointer<Float>) {
        let d = dIn, n = dSAE
        var active = 0
        for i in 0..<n where f[i] != 0 { active += 1 }
        for j in 0..<d { out[j] = bDec[j] }
        wDec.withUnsafeBufferPointer { w in
            guard let base = w.baseAddress else { return }
            if active * 8 > n {
                BLAS.sgemm(m: 1, n: d, k: n, a: f, lda: n, b: base, ldb: d, beta: 1, c: out, ldc: d)
            } else {
                for i in 0..<n where f[i] != 0 { Vec.axpy(f[i], base + i * d, out, d) }
            }
        }
        let inv = 1 / scale
        if inv != 1 { for j in 0..<d { out[j] *= inv } }
    }

    /// Adds `W_dec[i] · delta / scale` to `x`: the change in the reconstruction when latent `i`
    /// moves by `delta`, which is how an edit is written back without touching the error term.
    public func addDecoderRow(_ i: Int, times delta: Float, scale: Float, to x: UnsafeMutablePointer<Float>) {
        precondition(i >= 0 && i < dSAE, "latent \(i) outside 0..<\(dSAE)")
        wDec.withUnsafeBufferPointer { w in
            guard let base = w.baseAddress else { return }
            Vec.axpy(delta / scale, base + i * dIn, x, dIn)
        }
    }

    /// Latent `i`'s decoder row (its direction in the model's activations).
    public func decoderRow(_ i: Int) -> [Float] {
        precondition(i >= 0 && i < dSAE, "latent \(i) outside 0..<\(dSAE)")
        return Array(wDec[(i * dIn)..<((i + 1) * dIn)])
    }
}

/// The latents of the positions of one step, with each position's input scale.
public struct SAEEncoding: Sendable {
    public let count: Int
    public let dSAE: Int
    /// (count, dSAE), row-major.
    public var latents: [Float]
    /// Each position's input scale (1 without normalisation).
    public let scales: [Float]

    /// Position `r`'s nonzero latents, largest first (ties: lower index first), at most `limit`.
    public func active(_ r: Int, limit: Int = .max) -> [ActiveLatent] {
        let n = dSAE
        return latents.withUnsafeBufferPointer { all in
            let row = UnsafeBufferPointer(rebasing: all[(r * n)..<((r + 1) * n)])
            let nonzero = l0(r)
            return Vec.topIndices(row, k: min(limit, nonzero)).map { ActiveLatent(index: $0, activation: row[$0]) }
        }
    }

    /// Position `r`'s number of nonzero latents.
    public func l0(_ r: Int) -> Int {
        var count = 0
        for i in (r * dSAE)..<((r + 1) * dSAE) where latents[i] != 0 { count += 1 }
        return count
    }
}

/// One latent that fired, and how strongly.
public struct ActiveLatent: Sendable, Equatable, Codable {
    public var index: Int
    public var activation: Float
}

/// The fraction of a position's variance the reconstruction leaves unexplained:
/// ‖x − x̂‖² / Σ (x_j − mean(x))², the variance taken over the position's own components.
public func fractionOfVarianceUnexplained(_ x: UnsafePointer<Float>, _ xHat: UnsafePointer<Float>, count d: Int) -> Double {
    var mean = 0.0
    for j in 0..<d { mean += Double(x[j]) }
    mean /= Double(max(d, 1))
    var err = 0.0, total = 0.0
    for j in 0..<d {
        let e = Double(x[j]) - Double(xHat[j])
        let c = Double(x[j]) - mean
        err += e * e
        total += c * c
    }
    return total > 0 ? err / total : (err > 0 ? .infinity : 0)
}
