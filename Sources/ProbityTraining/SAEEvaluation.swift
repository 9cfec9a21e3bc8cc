// Evaluating an SAE on held-out text: fraction of variance unexplained, L0, dead and dense latents,
// and cross-entropy loss recovered when the SAE's reconstruction is spliced into the forward pass
// (clean vs spliced vs zero-ablated at the hook), as SAELens's evals report them.

import Foundation
import ProbityFeatures
import ProbityLM
import ProbityTensor

/// Running sums for an SAE's evaluation metrics.
public struct SAEEvalAccumulator: Sendable {
    public let dIn: Int
    public let dSAE: Int
    public private(set) var positions = 0
    var errorSum = 0.0
    var sum: [Double]
    var sumSquares: [Double]
    var activeSum = 0
    var fires: [Int]
    /// Summed next-token losses over `cePositions` predictions, per condition.
    var ceClean = 0.0, ceSpliced = 0.0, ceZero = 0.0
    public private(set) var cePositions = 0

    public init(dIn: Int, dSAE: Int) {
        self.dIn = dIn
        self.dSAE = dSAE
        sum = [Double](repeating: 0, count: dIn)
        sumSquares = sum
        fires = [Int](repeating: 0, count: dSAE)
    }

    /// Adds positions: activations `x`, their reconstructions `xHat` and latents (each count rows).
    public mutating func add(x: UnsafePointer<Float>, xHat: UnsafePointer<Float>, latents: UnsafePointer<Float>, count: Int) {
        for r in 0..<count {
            for j in 0..<dIn {
                let v = Double(x[r * dIn + j])
                let e = v - Double(xHat[r * dIn + j])
                errorSum += e * e
                sum[j] += v
                sumSquares[j] += v * v
            }
            for i in 0..<dSAE where latents[r * dSAE + i] != 0 {
                fires[i] += 1
                activeSum += 1
            }
        }
        positions += count
    }

    /// Adds one prediction's loss (−log p of the next token) under each condition.
    public mutating func addLoss(clean: Double, spliced: Double, zero: Double) {
        ceClean += clean
        ceSpliced += spliced
        ceZero += zero
        cePositions += 1
    }

    /// Latents firing on more than this fraction of positions count as dense.
    public static let denseFrequency = 0.1

    public var metrics: SAEEvalMetrics {
        let n = Double(max(positions, 1))
        var total = 0.0
        for j in 0..<dIn { total += sumSquares[j] - sum[j] * sum[j] / n }
        let m = Double(max(cePositions, 1))
        let clean = ceClean / m, spliced = ceSpliced / m, zero = ceZero / m
        return SAEEvalMetrics(
            positions: positions,
            fvu: total > 0 ? errorSum / total : 0,
            l0: Double(activeSum) / n,
            deadLatents: fires.filter { $0 == 0 }.count,
            denseLatents: fires.filter { Double($0) / n > Self.denseFrequency }.count,
            dSAE: dSAE,
            cePositions: cePositions,
            ceClean: clean, ceSpliced: spliced, ceZeroAblated: zero,
            ceLossRecovered: zero != clean ? (zero - spliced) / (zero - clean) : 0)
    }
}

/// An SAE's evaluation results.
public struct SAEEvalMetrics: Sendable, Equatable {
    public var positions: Int
    /// Σ‖x − x̂‖² / Σ‖x − mean(x)‖², the mean over all evaluated positions.
    public var fvu: Double
    public var l0: Double
    /// Latents that never fired.
    public var deadLatents: Int
    /// Latents firing on more than 10% of positions.
    public var denseLatents: Int
    public var dSAE: Int
    public var cePositions: Int
    public var ceClean: Double
    public var ceSpliced: Double
    public var ceZeroAblated: Double
    /// (CE_zero − CE_spliced) / (CE_zero − CE_clean).
    public var ceLossRecovered: Double

    /// The metrics as a JSON object (snake_case keys).
    public var json: [String: Any] {
        [
            "positions": positions, "fvu": fvu, "l0": l0, "dead_latents": deadLatents,
            "dead_fraction": Double(deadLatents) / Double(max(dSAE, 1)), "dense_latents": denseLatents,
            "d_sae": dSAE, "ce_positions": cePositions, "ce_clean": ceClean, "ce_spliced": ceSpliced,
            "ce_zero_ablated": ceZeroAblated, "ce_loss_recovered": ceLossRecovered,
        ]
    }
}

/// Runs held-out windows three ways (clean, SAE spliced in, zero-ablated at the hook) and
/// accumulates the metrics. Special-token positions are left alone and not counted; the loss is
/// taken for predictions made at counted positions.
public enum SAEEvaluation {
    public static func evaluate(sae: SparseAutoencoder, model: any LanguageModel, tokenizer: Tokenizer, point: HookPoint,
                                source: WindowSource, tokens limit: Int) throws -> SAEEvalMetrics {
        try model.info.validate(point)
        let width = model.info.width
        guard sae.dIn == width else {
            throw FeatureError.widthMismatch(pack: "SAE", dIn: sae.dIn, modelWidth: width)
        }
        var acc = SAEEvalAccumulator(dIn: sae.dIn, dSAE: sae.dSAE)
        let session = try model.makeSession(capacity: source.context)
        let vocab = model.info.vocabularySize
        try source.forEachDocument { windows in
            for window in windows {
                let counted = window.map { !tokenizer.isSpecial($0) }
                // Clean run, capturing the activations.
                var clean: [Float] = []
                var pool: ThreadPool?
                let capture = HookSet()
                capture.attach(at: point) { acts in
                    clean.append(contentsOf: UnsafeBufferPointer(start: acts.values, count: acts.count * width))
                    pool = acts.pool
                }
                session.reset()
                let cleanLogits = try session.forward(window, hooks: capture, logits: .all)
                let rows = window.indices.filter { counted[$0] }
                if rows.isEmpty { continue }
                var x = [Float](repeating: 0, count: rows.count * width)
                for (slot, r) in rows.enumerated() { for j in 0..<width { x[slot * width + j] = clean[r * width + j] } }
                let enc = x.withUnsafeBufferPointer { sae.encode($0.baseAddress!, count: rows.count, pool: pool) }
                var xHat = [Float](repeating: 0, count: rows.count * width)
                enc.latents.withUnsafeBufferPointer { f in xHat.withUnsafeMutableBufferPointer { out in
                    for slot in 0..<rows.count {
                        sae.decode(f.baseAddress! + slot * sae.dSAE, scale: enc.scales[slot], into: out.baseAddress! + slot * width)
                    }
                } }
                x.withUnsafeBufferPointer { xp in xHat.withUnsafeBufferPointer { hp in enc.latents.withUnsafeBufferPointer { fp in
                    acc.add(x: xp.baseAddress!, xHat: hp.baseAddress!, latents: fp.baseAddress!, count: rows.count)
                } } }
                // Spliced and zero-ablated runs replace the counted rows.
                func run(_ replace: @escaping (Int, UnsafeMutablePointer<Float>) -> Void) throws -> [Float] {
                    let hooks = HookSet()
                    hooks.attach(at: point) { acts in
                        for r in 0..<acts.count where counted[acts.positions.lowerBound + r] {
                            replace(acts.positions.lowerBound + r, acts.values + r * width)
                        }
                    }
                    session.reset()
                    return try session.forward(window, hooks: hooks, logits: .all)
                }
                var slotOf = [Int](repeating: -1, count: window.count)
                for (slot, r) in rows.enumerated() { slotOf[r] = slot }
                let splicedLogits = try run { pos, v in
                    let s = slotOf[pos]
                    for j in 0..<width { v[j] = xHat[s * width + j] }
                }
                let zeroLogits = try run { _, v in for j in 0..<width { v[j] = 0 } }
                for t in 0..<(window.count - 1) where counted[t] {
                    let target = window[t + 1]
                    acc.addLoss(clean: nll(cleanLogits, row: t, vocab: vocab, target: target),
                                spliced: nll(splicedLogits, row: t, vocab: vocab, target: target),
                                zero: nll(zeroLogits, row: t, vocab: vocab, target: target))
                }
                if acc.positions >= limit { return false }
            }
            return true
        }
        return acc.metrics
    }

    /// −log softmax(logits[row])[target], in float64.
    public static func nll(_ logits: [Float], row: Int, vocab: Int, target: Int) -> Double {
        let base = row * vocab
        var maxV = -Double.infinity
        for i in 0..<vocab { maxV = max(maxV, Double(logits[base + i])) }
        var s = 0.0
        for i in 0..<vocab { s += Foundation.exp(Double(logits[base + i]) - maxV) }
        return maxV + Foundation.log(s) - Double(logits[base + target])
    }
}
