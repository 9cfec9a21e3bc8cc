// Training a TopK sparse autoencoder (Gao et al. 2024, "Scaling and evaluating sparse
// autoencoders"): ReLU then top-k, unit-norm decoder rows (gradient projected, rows renormalised
// each step), b_dec at the geometric median, encoder tied to the decoder at init, AuxK on dead
// latents, Adam with warm-up and linear decay, inputs scaled to mean norm √d_in (SAELens
// `expected_average_only_in` with `norm_scaling_factor`).

import Foundation
import ProbityFeatures
import ProbityTensor

/// Hyperparameters of a TopK SAE run. Everything that changes the result is here, so a checkpoint
/// can refuse to resume under different settings.
public struct TopKTrainingOptions: Sendable, Equatable, Codable {
    public var dIn: Int
    public var latents: Int
    public var k: Int
    /// Positions per optimiser step.
    public var batchSize: Int = 4096
    /// Steps in the whole run (sets the decay schedule).
    public var totalSteps: Int
    public var learningRate: Float = 2e-4
    /// Linear warm-up steps from 0 to the learning rate.
    public var warmupSteps: Int = 100
    /// The last fraction of steps decays the learning rate linearly to 0.
    public var decayFraction: Double = 0.2
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    /// AuxK: a latent is dead once it has not fired for this many training positions.
    public var deadAfterTokens: Int = 10_000_000
    /// AuxK's k: 0 means d_in / 2, as in Gao et al.
    public var auxK: Int = 0
    public var auxCoefficient: Float = 1.0 / 32
    public var seed: UInt64 = 0

    public init(dIn: Int, latents: Int, k: Int, totalSteps: Int) {
        self.dIn = dIn
        self.latents = latents
        self.k = k
        self.totalSteps = totalSteps
    }

    /// The AuxK k in effect.
    public var effectiveAuxK: Int { min(auxK > 0 ? auxK : max(dIn / 2, 1), latents) }

    /// Checks the settings, naming the offending one.
    public func validate() throws {
        func bad(_ name: String, _ expected: String, _ found: Any) -> TrainingError {
            TrainingError.badArgument(name: name, expected: expected, found: "\(found)")
        }
        guard dIn > 0 else { throw bad("d_in", "a positive width", dIn) }
        guard latents > 0 else { throw bad("latents", "a positive number of latents", latents) }
        guard k > 0, k <= latents else { throw bad("k", "1 to the number of latents (\(latents))", k) }
        guard batchSize > 0 else { throw bad("batch size", "a positive number of positions", batchSize) }
        guard totalSteps > 0 else { throw bad("tokens", "at least one batch of positions (\(batchSize))", totalSteps) }
        guard learningRate.isFinite, learningRate > 0 else { throw bad("learning rate", "a positive learning rate", learningRate) }
        guard warmupSteps >= 0 else { throw bad("warmup steps", "0 or more", warmupSteps) }
        guard deadAfterTokens > 0 else { throw bad("dead after", "a positive number of tokens", deadAfterTokens) }
    }
}

/// What one optimiser step measured, on its own batch, before the update.
public struct TopKStepStats: Sendable, Equatable {
    /// Mean squared reconstruction error per position, in the scaled space.
    public var mse: Double
    public var auxLoss: Double
    /// Σ‖x − x̂‖² / Σ‖x − mean_batch(x)‖².
    public var fvu: Double
    /// Mean active latents per position.
    public var l0: Double
    /// Fraction of latents dead (not fired for `deadAfterTokens` positions) before this step.
    public var deadFraction: Double
    public var learningRate: Float
}

/// A TopK SAE being trained, with its optimiser state. Weights live in the scaled input space
/// (inputs times `scale`), exactly as SAELens stores them with `norm_scaling_factor`.
public final class TopKTrainer {
    public let options: TopKTrainingOptions
    /// Input scale: √d_in / (mean ‖x‖ over the first sample).
    public let scale: Float
    public private(set) var step = 0
    public private(set) var tokensSeen = 0
    /// OpenBLAS's threads for each step's encoder product. The trajectory depends on it (OpenBLAS
    /// sums in another order at another count), so a resumed run is bit-identical to an
    /// uninterrupted one only at the same count.
    public var blasThreads = 1

    // Parameters. The encoder is kept as (d_sae, d_in) so its gradient rows are contiguous;
    // SAELens's W_enc is its transpose.
    var wEncT: [Float]
    var bEnc: [Float]
    var wDec: [Float]
    var bDec: [Float]
    // Adam moments, in the same layout.
    var mEncT: [Float], vEncT: [Float], mBEnc: [Float], vBEnc: [Float]
    var mDec: [Float], vDec: [Float], mBDec: [Float], vBDec: [Float]
    /// Per latent, `tokensSeen` after the last batch in which it fired.
    var lastFired: [Int]

    /// Starts a run: the input scale and b_dec (geometric median) from `sample` (`count` × d_in
    /// raw activations), decoder rows random unit vectors from `options.seed`, encoder = decoderᵀ.
    public init(options: TopKTrainingOptions, sample: [Float], count: Int) throws {
        try options.validate()
        let d = options.dIn, n = options.latents
        guard count > 0, sample.count == count * d else {
            throw TrainingError.badArgument(name: "initial sample", expected: "a positive number of rows of \(d) values",
                                            found: "\(sample.count) values")
        }
        self.options = options
        var normSum = 0.0
        for r in 0..<count {
            var ss = 0.0
            for j in 0..<d { ss += Double(sample[r * d + j]) * Double(sample[r * d + j]) }
            normSum += ss.squareRoot()
        }
        let meanNorm = normSum / Double(count)
        let s: Float = meanNorm > 0 ? Float(Double(d).squareRoot() / meanNorm) : 1
        scale = s
        let scaled = sample.map { $0 * s }
        bDec = geometricMedian(scaled, count: count, width: d)
        bEnc = [Float](repeating: 0, count: n)
        var rng = SplitMix64(seed: options.seed)
        var dec = [Float](repeating: 0, count: n * d)
        for i in 0..<n {
            var ss: Float = 0
            for j in 0..<d {
                let g = rng.nextGaussian()
                dec[i * d + j] = g
                ss += g * g
            }
            let inv = ss > 0 ? 1 / ss.squareRoot() : 0
            for j in 0..<d { dec[i * d + j] *= inv }
        }
        wDec = dec
        wEncT = dec
        mEncT = [Float](repeating: 0, count: n * d); vEncT = mEncT; mDec = mEncT; vDec = mEncT
        mBEnc = [Float](repeating: 0, count: n); vBEnc = mBEnc
        mBDec = [Float](repeating: 0, count: d); vBDec = mBDec
        lastFired = [Int](repeating: 0, count: n)
    }

    /// The learning rate at step `s`: linear warm-up, flat, then linear decay to 0 over the last
    /// `decayFraction` of the run.
    public func learningRate(at s: Int) -> Float {
        let o = options
        var lr = o.learningRate
        if o.warmupSteps > 0 && s < o.warmupSteps { lr *= Float(s + 1) / Float(o.warmupSteps) }
        let decaySteps = Int((Double(o.totalSteps) * o.decayFraction).rounded())
        let decayStart = o.totalSteps - decaySteps
        if decaySteps > 0 && s >= decayStart {
            lr *= Float(max(0, o.totalSteps - s)) / Float(decaySteps)
        }
        return lr
    }

    /// Fraction of latents dead now.
    public var deadFraction: Double {
        let dead = lastFired.reduce(0) { $0 + (tokensSeen - $1 >= options.deadAfterTokens ? 1 : 0) }
        return Double(dead) / Double(options.latents)
    }

    /// One Adam step on `count` positions of raw activations (`x`: count × d_in).
    @discardableResult
    public func train(_ x: UnsafePointer<Float>, count: Int) -> TopKStepStats {
        let d = options.dIn, n = options.latents, k = options.k
        precondition(count > 0, "empty batch")
        let invB = 1 / Float(count)

        // Forward: input = scale·x − b_dec; pre = input · W_encᵀ + b_enc.
        var input = [Float](repeating: 0, count: count * d)
        var xs = [Float](repeating: 0, count: count * d)
        for r in 0..<count {
            for j in 0..<d {
                let v = scale * x[r * d + j]
                xs[r * d + j] = v
                input[r * d + j] = v - bDec[j]
            }
        }
        var pre = [Float](repeating: 0, count: count * n)
        for r in 0..<count { pre.withUnsafeMutableBufferPointer { p in
            for i in 0..<n { p[r * n + i] = bEnc[i] }
        } }
        input.withUnsafeBufferPointer { a in wEncT.withUnsafeBufferPointer { w in pre.withUnsafeMutableBufferPointer { c in
            BLAS.sgemm(m: count, n: n, k: d, a: a.baseAddress!, lda: d, b: w.baseAddress!, ldb: d, transposeB: true,
                       beta: 1, c: c.baseAddress!, ldc: n, threads: blasThreads)
        } } }

        // Dead latents, as of the positions seen before this batch.
        let deadLimit = options.deadAfterTokens
        var dead = [Bool](repeating: false, count: n)
        var deadCount = 0
        for i in 0..<n where tokensSeen - lastFired[i] >= deadLimit {
            dead[i] = true
            deadCount += 1
        }
        let kAux = options.effectiveAuxK

        var gWEncT = [Float](repeating: 0, count: n * d)
        var gBEnc = [Float](repeating: 0, count: n)
        var gWDec = [Float](repeating: 0, count: n * d)
        var gBDec = [Float](repeating: 0, count: d)
        var mseSum = 0.0, auxSum = 0.0, activeSum = 0
        var fired = [Bool](repeating: false, count: n)
        var recon = [Float](repeating: 0, count: d)
        var gRecon = [Float](repeating: 0, count: d)
        var gInput = [Float](repeating: 0, count: d)
        var auxRecon = [Float](repeating: 0, count: d)
        // AuxK's loss weight: Gao et al.'s 1/32, scaled down while fewer latents are dead than k_aux (as SAELens).
        let auxScale = options.auxCoefficient * min(Float(deadCount) / Float(max(kAux, 1)), 1)

        wDec.withUnsafeBufferPointer { wd in wEncT.withUnsafeBufferPointer { we in
        gWDec.withUnsafeMutableBufferPointer { gwd in gWEncT.withUnsafeMutableBufferPointer { gwe in
        pre.withUnsafeBufferPointer { pre in
            let wd = wd.baseAddress!, we = we.baseAddress!, gwd = gwd.baseAddress!, gwe = gwe.baseAddress!
            for r in 0..<count {
                let p = pre.baseAddress! + r * n
                let top = selectTop(p, count: n, k: k, where: nil)
                for j in 0..<d { recon[j] = bDec[j] }
                for (i, v) in top where v > 0 {
                    Vec.axpy(v, wd + i * d, &recon, d)
                    fired[i] = true
                    activeSum += 1
                }
                // err = x̂ − x; dL/dx̂ = 2·err / B.
                var se = 0.0
                for j in 0..<d {
                    let e = recon[j] - xs[r * d + j]
                    se += Double(e) * Double(e)
                    gRecon[j] = 2 * e * invB
                }
                mseSum += se
                for j in 0..<d { gBDec[j] += gRecon[j]; gInput[j] = 0 }
                var pairs: [(Int, Float, Float)] = []   // latent, activation, dL/dpre
                for (i, v) in top where v > 0 {
                    pairs.append((i, v, Vec.dot(gRecon, wd + i * d, d)))
                    Vec.axpy(v, gRecon, gwd + i * d, d)
                }
                // AuxK: the top k_aux dead latents reconstruct the residual x − x̂ (held fixed).
                if deadCount > 0 && auxScale > 0 {
                    let auxTop = selectTop(p, count: n, k: kAux, where: dead)
                    for j in 0..<d { auxRecon[j] = 0 }
                    for (i, v) in auxTop where v > 0 { Vec.axpy(v, wd + i * d, &auxRecon, d) }
                    var sa = 0.0
                    for j in 0..<d {
                        let e = auxRecon[j] + (recon[j] - xs[r * d + j])   // ê − (x − x̂)
                        sa += Double(e) * Double(e)
                        gRecon[j] = auxScale * 2 * e * invB
                    }
                    auxSum += sa
                    for (i, v) in auxTop where v > 0 {
                        pairs.append((i, v, Vec.dot(gRecon, wd + i * d, d)))
                        Vec.axpy(v, gRecon, gwd + i * d, d)
                    }
                }
                // Through the encoder: dL/dW_encᵀ[i] += g·input, dL/db_enc[i] += g, dL/dinput += g·W_encᵀ[i].
                input.withUnsafeBufferPointer { inp in
                    let row = inp.baseAddress! + r * d
                    for (i, _, g) in pairs where g != 0 {
                        Vec.axpy(g, row, gwe + i * d, d)
                        gBEnc[i] += g
                        Vec.axpy(g, we + i * d, &gInput, d)
                    }
                }
                // input = x − b_dec.
                for j in 0..<d { gBDec[j] -= gInput[j] }
            }
        } } } } }

        // FVU against the batch mean.
        var mean = [Double](repeating: 0, count: d)
        for r in 0..<count { for j in 0..<d { mean[j] += Double(xs[r * d + j]) } }
        for j in 0..<d { mean[j] /= Double(count) }
        var total = 0.0
        for r in 0..<count { for j in 0..<d { let c = Double(xs[r * d + j]) - mean[j]; total += c * c } }

        let stats = TopKStepStats(
            mse: mseSum / Double(count), auxLoss: auxSum / Double(count), fvu: total > 0 ? mseSum / total : 0,
            l0: Double(activeSum) / Double(count), deadFraction: Double(deadCount) / Double(n),
            learningRate: learningRate(at: step))

        // Keep decoder rows unit norm: drop each row gradient's component along the row.
        for i in 0..<n {
            gWDec.withUnsafeMutableBufferPointer { g in wDec.withUnsafeBufferPointer { w in
                let gi = g.baseAddress! + i * d, wi = w.baseAddress! + i * d
                let along = Vec.dot(gi, wi, d)
                if along != 0 { Vec.axpy(-along, wi, gi, d) }
            } }
        }

        step += 1
        let lr = stats.learningRate
        adam(&wEncT, gWEncT, &mEncT, &vEncT, lr: lr)
        adam(&bEnc, gBEnc, &mBEnc, &vBEnc, lr: lr)
        adam(&wDec, gWDec, &mDec, &vDec, lr: lr)
        adam(&bDec, gBDec, &mBDec, &vBDec, lr: lr)
        for i in 0..<n {
            var ss: Float = 0
            for j in 0..<d { ss += wDec[i * d + j] * wDec[i * d + j] }
            if ss > 0 {
                let inv = 1 / ss.squareRoot()
                for j in 0..<d { wDec[i * d + j] *= inv }
            }
        }
        tokensSeen += count
        for i in 0..<n where fired[i] { lastFired[i] = tokensSeen }
        return stats
    }

    /// Adam with bias correction; `step` has already been advanced.
    private func adam(_ p: inout [Float], _ g: [Float], _ m: inout [Float], _ v: inout [Float], lr: Float) {
        let b1 = options.beta1, b2 = options.beta2, eps = options.epsilon
        let c1 = 1 - Float(pow(Double(b1), Double(step)))
        let c2 = 1 - Float(pow(Double(b2), Double(step)))
        let stepSize = lr / c1
        let invSqrtC2 = 1 / c2.squareRoot()
        p.withUnsafeMutableBufferPointer { p in m.withUnsafeMutableBufferPointer { m in v.withUnsafeMutableBufferPointer { v in
        g.withUnsafeBufferPointer { g in
            for j in 0..<p.count {
                let gj = g[j]
                let mj = b1 * m[j] + (1 - b1) * gj
                let vj = b2 * v[j] + (1 - b2) * gj * gj
                m[j] = mj
                v[j] = vj
                p[j] -= stepSize * mj / ((vj.squareRoot() * invSqrtC2) + eps)
            }
        } } } }
    }

    /// The SAE as trained: SAELens's TopK layout with `expected_average_only_in` and this run's
    /// `norm_scaling_factor`, so `SparseAutoencoder.encode` sees the same scaled input as training.
    public func makeSAE(hookName: String? = nil, modelName: String? = nil) throws -> SparseAutoencoder {
        let d = options.dIn, n = options.latents
        var wEnc = [Float](repeating: 0, count: d * n)
        for i in 0..<n { for j in 0..<d { wEnc[j * n + i] = wEncT[i * d + j] } }
        let config = SAEConfig(dIn: d, dSAE: n, architecture: .topK(options.k), applyBDecToInput: true,
                               normalization: .expectedAverageOnlyIn(scale: scale), hookName: hookName, modelName: modelName)
        return try SparseAutoencoder(config: config, wEnc: wEnc, bEnc: bEnc, wDec: wDec, bDec: bDec, threshold: nil)
    }

    /// Decoder row `i` (unit norm).
    public func decoderRow(_ i: Int) -> [Float] { Array(wDec[(i * options.dIn)..<((i + 1) * options.dIn)]) }

    // MARK: Checkpoint state

    /// The tensors a checkpoint stores, by name.
    var stateTensors: [(String, [Int], [Float])] {
        let d = options.dIn, n = options.latents
        return [
            ("W_enc_T", [n, d], wEncT), ("b_enc", [n], bEnc), ("W_dec", [n, d], wDec), ("b_dec", [d], bDec),
            ("adam_m.W_enc_T", [n, d], mEncT), ("adam_v.W_enc_T", [n, d], vEncT),
            ("adam_m.b_enc", [n], mBEnc), ("adam_v.b_enc", [n], vBEnc),
            ("adam_m.W_dec", [n, d], mDec), ("adam_v.W_dec", [n, d], vDec),
            ("adam_m.b_dec", [d], mBDec), ("adam_v.b_dec", [d], vBDec),
            ("scale", [1], [scale]),
        ]
    }

    /// Rebuilds a trainer from checkpointed state (see `TrainingCheckpoint`).
    init(options: TopKTrainingOptions, tensors: [String: [Float]], step: Int, tokensSeen: Int, lastFired: [Int], path: String) throws {
        let d = options.dIn, n = options.latents
        func get(_ name: String, _ count: Int) throws -> [Float] {
            guard let t = tensors[name], t.count == count else {
                throw TrainingError.badCheckpoint(path: path, reason: "tensor \(name) missing or not \(count) values")
            }
            return t
        }
        self.options = options
        wEncT = try get("W_enc_T", n * d); bEnc = try get("b_enc", n); wDec = try get("W_dec", n * d); bDec = try get("b_dec", d)
        mEncT = try get("adam_m.W_enc_T", n * d); vEncT = try get("adam_v.W_enc_T", n * d)
        mBEnc = try get("adam_m.b_enc", n); vBEnc = try get("adam_v.b_enc", n)
        mDec = try get("adam_m.W_dec", n * d); vDec = try get("adam_v.W_dec", n * d)
        mBDec = try get("adam_m.b_dec", d); vBDec = try get("adam_v.b_dec", d)
        scale = try get("scale", 1)[0]
        guard lastFired.count == n else {
            throw TrainingError.badCheckpoint(path: path, reason: "last_fired has \(lastFired.count) entries, expected \(n)")
        }
        self.step = step
        self.tokensSeen = tokensSeen
        self.lastFired = lastFired
    }
}

/// The `k` largest values of `p[0..<count]` (optionally only where `mask` is true), largest first,
/// ties to the lower index, each with its value after ReLU.
func selectTop(_ p: UnsafePointer<Float>, count: Int, k: Int, where mask: [Bool]?) -> [(Int, Float)] {
    guard k > 0 else { return [] }
    // A bounded list kept sorted; a value enters only if it beats the current k-th.
    var idx: [Int] = []
    idx.reserveCapacity(k + 1)
    var floor = -Float.infinity
    for i in 0..<count {
        if let mask, !mask[i] { continue }
        let v = p[i]
        if idx.count == k && !(v > floor) { continue }
        var j = idx.count
        while j > 0 && p[idx[j - 1]] < v { j -= 1 }
        idx.insert(i, at: j)
        if idx.count > k { idx.removeLast() }
        if idx.count == k, let last = idx.last { floor = p[last] }
    }
    return idx.map { ($0, max(p[$0], 0)) }
}

/// The geometric median of `count` rows (Weiszfeld's iteration from the mean), the point that
/// minimises the summed distance to the rows: Gao et al.'s b_dec initialisation.
func geometricMedian(_ rows: [Float], count: Int, width d: Int, iterations: Int = 50) -> [Float] {
    var y = [Double](repeating: 0, count: d)
    for r in 0..<count { for j in 0..<d { y[j] += Double(rows[r * d + j]) } }
    for j in 0..<d { y[j] /= Double(count) }
    for _ in 0..<iterations {
        var num = [Double](repeating: 0, count: d)
        var den = 0.0
        for r in 0..<count {
            var dist = 0.0
            for j in 0..<d { let t = Double(rows[r * d + j]) - y[j]; dist += t * t }
            let w = 1 / max(dist.squareRoot(), 1e-8)
            for j in 0..<d { num[j] += w * Double(rows[r * d + j]) }
            den += w
        }
        var moved = 0.0
        for j in 0..<d {
            let next = num[j] / den
            moved += (next - y[j]) * (next - y[j])
            y[j] = next
        }
        if moved < 1e-12 { break }
    }
    return y.map { Float($0) }
}
