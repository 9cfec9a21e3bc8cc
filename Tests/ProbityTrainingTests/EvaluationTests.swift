// Evaluation metrics against a plain reference computation.

import Foundation
import ProbityTensor
import Testing
@testable import ProbityTraining

@Suite struct EvaluationTests {
    @Test func accumulatorMatchesReference() {
        var rng = SplitMix64(seed: 9)
        let d = 6, n = 10, count = 40
        let x = (0..<(count * d)).map { _ in rng.nextGaussian() * 3 + 1 }
        let xHat = x.map { $0 + rng.nextGaussian() * 0.5 }
        // Latent 0 fires everywhere (dense), latent 9 never (dead), others now and then.
        var f = [Float](repeating: 0, count: count * n)
        for r in 0..<count {
            f[r * n] = 1
            for i in 1..<9 where rng.nextUnit() < 0.05 { f[r * n + i] = 2 }
        }
        var acc = SAEEvalAccumulator(dIn: d, dSAE: n)
        // In two parts, as windows arrive.
        x.withUnsafeBufferPointer { xp in xHat.withUnsafeBufferPointer { hp in f.withUnsafeBufferPointer { fp in
            acc.add(x: xp.baseAddress!, xHat: hp.baseAddress!, latents: fp.baseAddress!, count: 15)
            acc.add(x: xp.baseAddress! + 15 * d, xHat: hp.baseAddress! + 15 * d, latents: fp.baseAddress! + 15 * n, count: 25)
        } } }
        acc.addLoss(clean: 2, spliced: 3, zero: 6)
        acc.addLoss(clean: 4, spliced: 5, zero: 10)

        // Reference: two passes in float64.
        var mean = [Double](repeating: 0, count: d)
        for r in 0..<count { for j in 0..<d { mean[j] += Double(x[r * d + j]) / Double(count) } }
        var err = 0.0, tot = 0.0
        for r in 0..<count {
            for j in 0..<d {
                err += pow(Double(x[r * d + j]) - Double(xHat[r * d + j]), 2)
                tot += pow(Double(x[r * d + j]) - mean[j], 2)
            }
        }
        let fires = (0..<n).map { i in (0..<count).filter { f[$0 * n + i] != 0 }.count }
        let m = acc.metrics
        #expect(abs(m.fvu - err / tot) < 1e-9)
        #expect(m.l0 == Double(fires.reduce(0, +)) / Double(count))
        #expect(m.deadLatents == fires.filter { $0 == 0 }.count)
        #expect(m.deadLatents >= 1)
        #expect(m.denseLatents == fires.filter { Double($0) / Double(count) > 0.1 }.count)
        #expect(m.ceClean == 3 && m.ceSpliced == 4 && m.ceZeroAblated == 8)
        #expect(abs(m.ceLossRecovered - 0.8) < 1e-12)   // (8 − 4) / (8 − 3)
    }

    @Test func negativeLogLikelihood() {
        let logits: [Float] = [0, 0, 0, 0, 1, 2, 3, 4]
        #expect(abs(SAEEvaluation.nll(logits, row: 0, vocab: 4, target: 2) - log(4.0)) < 1e-12)
        let z = exp(1.0) + exp(2.0) + exp(3.0) + exp(4.0)
        #expect(abs(SAEEvaluation.nll(logits, row: 1, vocab: 4, target: 3) - (log(z) - 4)) < 1e-12)
    }
}
