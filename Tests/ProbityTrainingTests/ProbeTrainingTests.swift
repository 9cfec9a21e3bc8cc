// The probe fitter against plain references: the objective's gradient (written out here, in float64)
// vanishes at the fit; a one-feature case solved by bisection; a two-feature case by plain gradient
// descent; separable data gives back its direction; a large λ shrinks the weights. Folds keep pairs
// together, AUROC counts pairs, and cross-validation prefers the informative candidate.

import Foundation
import ProbityTensor
import Testing
@testable import ProbityTraining

/// Rows of `d` standard normals, and labels from the sign of u·x + noise.
private func synthetic(n: Int, d: Int, seed: UInt64, noise: Float = 0, shift: Float = 0) -> (rows: [[Double]], labels: [Bool], u: [Double]) {
    var rng = SplitMix64(seed: seed)
    let u = (0..<d).map { _ in Double(rng.nextGaussian()) }
    var rows: [[Double]] = [], labels: [Bool] = []
    for _ in 0..<n {
        let x = (0..<d).map { j in Double(rng.nextGaussian() * Float(1 + j % 3)) + Double(shift) }
        let s = zip(x, u).reduce(0) { $0 + $1.0 * $1.1 } + Double(noise * rng.nextGaussian())
        rows.append(x)
        labels.append(s > Double(shift) * u.reduce(0, +))
    }
    return (rows, labels, u)
}

/// The gradient of J(w, b) = (1/n) Σ [log(1 + e^η) − yη] + (λ/2) Σ (σ_j w_j)², computed plainly.
private func referenceGradient(rows: [[Double]], labels: [Bool], l2: Double, w: [Double], b: Double) -> [Double] {
    let n = Double(rows.count), d = w.count
    var mean = [Double](repeating: 0, count: d), variance = [Double](repeating: 0, count: d)
    for r in rows { for j in 0..<d { mean[j] += r[j] / n } }
    for r in rows { for j in 0..<d { variance[j] += (r[j] - mean[j]) * (r[j] - mean[j]) / n } }
    var g = [Double](repeating: 0, count: d + 1)
    for (x, y) in zip(rows, labels) {
        let eta = b + zip(w, x).reduce(0) { $0 + $1.0 * $1.1 }
        let r = 1 / (1 + exp(-eta)) - (y ? 1 : 0)
        g[0] += r / n
        for j in 0..<d { g[1 + j] += r * x[j] / n }
    }
    for j in 0..<d { g[1 + j] += l2 * variance[j] * w[j] }
    return g
}

@Suite struct LogisticRegressionTests {
    @Test func gradientVanishesAtTheFit() throws {
        let (rows, labels, _) = synthetic(n: 80, d: 6, seed: 7, noise: 1.5, shift: 0.3)
        for l2 in [1e-3, 0.1, 3.0] {
            let m = try LogisticRegression.fit(rows: rows, labels: labels, l2: l2)
            let g = referenceGradient(rows: rows, labels: labels, l2: l2, w: m.weights, b: m.bias)
            #expect(g.map(abs).max() ?? 1 < 1e-9, "λ \(l2): gradient \(g)")
            // A nudge in any coordinate does not lower the objective (it is the minimum, not a saddle).
            #expect(m.iterations < 50)
        }
    }

    /// x = ±1 with a positives and c negatives at +1, mirrored at −1: b = 0 by symmetry and w solves
    /// σ(w) + λw = a / (a + c) (μ = 0, σ = 1), found here by bisection.
    @Test func oneFeatureCaseMatchesBisection() throws {
        let a = 3, c = 1, l2 = 0.1
        var rows: [[Double]] = [], labels: [Bool] = []
        for _ in 0..<a { rows.append([1]); labels.append(true); rows.append([-1]); labels.append(false) }
        for _ in 0..<c { rows.append([1]); labels.append(false); rows.append([-1]); labels.append(true) }
        var lo = 0.0, hi = 20.0
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if 1 / (1 + exp(-mid)) + l2 * mid < Double(a) / Double(a + c) { lo = mid } else { hi = mid }
        }
        let m = try LogisticRegression.fit(rows: rows, labels: labels, l2: l2)
        #expect(abs(m.weights[0] - lo) < 1e-10, "\(m.weights[0]) vs \(lo)")
        #expect(abs(m.bias) < 1e-12)
    }

    /// Eight rows, two features: plain gradient descent on the same objective, run to convergence.
    @Test func twoFeatureCaseMatchesGradientDescent() throws {
        let rows: [[Double]] = [[0.5, 2], [1.5, -1], [2, 0.5], [-1, 1], [0, -2], [-0.5, 0.5], [1, 1], [-2, -1]]
        let labels = [true, true, true, false, false, false, false, true]
        let l2 = 0.05
        var w = [0.0, 0.0], b = 0.0
        for _ in 0..<200_000 {
            let g = referenceGradient(rows: rows, labels: labels, l2: l2, w: w, b: b)
            b -= 0.5 * g[0]
            w[0] -= 0.5 * g[1]
            w[1] -= 0.5 * g[2]
        }
        let m = try LogisticRegression.fit(rows: rows, labels: labels, l2: l2)
        #expect(abs(m.bias - b) < 1e-8 && abs(m.weights[0] - w[0]) < 1e-8 && abs(m.weights[1] - w[1]) < 1e-8,
                "fit \(m.weights) \(m.bias), descent \(w) \(b)")
    }

    @Test func separableDataRecoversTheDirection() throws {
        // Unit-variance features so the direction is comparable: the labels are the sign of u·x.
        var rng = SplitMix64(seed: 11)
        let d = 12
        let u = (0..<d).map { _ in Double(rng.nextGaussian()) }
        var rows: [[Double]] = [], labels: [Bool] = []
        while rows.count < 400 {
            let x = (0..<d).map { _ in Double(rng.nextGaussian()) }
            let s = zip(x, u).reduce(0) { $0 + $1.0 * $1.1 }
            if abs(s) < 0.2 { continue }   // a margin: separable
            rows.append(x)
            labels.append(s > 0)
        }
        let m = try LogisticRegression.fit(rows: rows, labels: labels, l2: 1e-4)
        let dot = zip(m.weights, u).reduce(0) { $0 + $1.0 * $1.1 }
        let cosine = dot / (m.weights.reduce(0) { $0 + $1 * $1 }.squareRoot() * u.reduce(0) { $0 + $1 * $1 }.squareRoot())
        #expect(cosine > 0.97, "cosine \(cosine)")
        #expect(rows.indices.allSatisfy { (m.logit(rows[$0]) > 0) == labels[$0] })
    }

    @Test func largeL2ShrinksTheWeights() throws {
        let (rows, labels, _) = synthetic(n: 60, d: 5, seed: 3, noise: 0.5)
        var norms: [Double] = []
        for l2 in [1e-3, 1e-1, 10, 1e3, 1e6] {
            let m = try LogisticRegression.fit(rows: rows, labels: labels, l2: l2)
            norms.append(m.weights.reduce(0) { $0 + $1 * $1 }.squareRoot())
        }
        #expect(zip(norms, norms.dropFirst()).allSatisfy { $0 > $1 }, "\(norms)")
        #expect(norms.last ?? 1 < 1e-5, "\(norms)")
    }

    @Test func warmStartReachesTheSameOptimum() throws {
        let (rows, labels, _) = synthetic(n: 50, d: 4, seed: 5, noise: 1)
        let near = try LogisticRegression.fit(rows: rows, labels: labels, l2: 0.5)
        let cold = try LogisticRegression.fit(rows: rows, labels: labels, l2: 0.05)
        let warm = try LogisticRegression.fit(rows: rows, labels: labels, l2: 0.05, start: near)
        #expect(zip(cold.weights, warm.weights).allSatisfy { abs($0 - $1) < 1e-9 } && abs(cold.bias - warm.bias) < 1e-9)
    }

    @Test func badInputIsAnError() {
        #expect(throws: TrainingError.self) { try LogisticRegression.fit(rows: [[1], [2]], labels: [true, true], l2: 1) }
        #expect(throws: TrainingError.self) { try LogisticRegression.fit(rows: [[1], [2]], labels: [true, false], l2: 0) }
        #expect(throws: TrainingError.self) { try LogisticRegression.fit(rows: [[1], [.nan]], labels: [true, false], l2: 1) }
        #expect(throws: TrainingError.self) { try LogisticRegression.fit(rows: [[1], [2, 3]], labels: [true, false], l2: 1) }
    }
}

@Suite struct ProbeCrossValidationTests {
    @Test func foldsKeepPairsTogether() {
        // 30 pairs (one of each label) and 40 unpaired negatives.
        var groups: [String] = [], labels: [Bool] = []
        for p in 0..<30 { groups += ["pair-\(p)", "pair-\(p)"]; labels += [true, false] }
        for b in 0..<40 { groups.append("benign-\(b)"); labels.append(false) }
        let folds = GroupedFolds.assign(groups: groups, labels: labels, k: 5, seed: 1)
        for g in Set(groups) {
            #expect(Set(groups.indices.filter { groups[$0] == g }.map { folds[$0] }).count == 1, "\(g)")
        }
        for f in 0..<5 {
            #expect(labels.indices.count { folds[$0] == f && labels[$0] } == 6)
            #expect(folds.count { $0 == f } == 20)
        }
        #expect(GroupedFolds.assign(groups: groups, labels: labels, k: 5, seed: 1) == folds)
        #expect(GroupedFolds.assign(groups: groups, labels: labels, k: 5, seed: 2) != folds)
    }

    @Test func aurocCountsPairsAndHalvesTies() throws {
        #expect(ProbeMetrics.auroc(scores: [3, 1, 2, 0], labels: [true, false, true, false]) == 1)
        #expect(ProbeMetrics.auroc(scores: [1, 1], labels: [true, false]) == 0.5)
        #expect(ProbeMetrics.auroc(scores: [1, 2], labels: [true, true]) == nil)
        var rng = SplitMix64(seed: 9)
        let scores = (0..<60).map { _ in Double(rng.next(below: 7)) }
        let labels = (0..<60).map { _ in rng.next(below: 2) == 1 }
        var wins = 0.0, pairs = 0.0
        for i in scores.indices where labels[i] {
            for j in scores.indices where !labels[j] {
                pairs += 1
                wins += scores[i] > scores[j] ? 1 : (scores[i] == scores[j] ? 0.5 : 0)
            }
        }
        #expect(abs(try #require(ProbeMetrics.auroc(scores: scores, labels: labels)) - wins / pairs) < 1e-12)
    }

    @Test func crossValidationPrefersTheInformativeCandidate() throws {
        let (signal, labels, _) = synthetic(n: 120, d: 6, seed: 21, noise: 0.5)
        var rng = SplitMix64(seed: 22)
        let noise = signal.map { r in r.map { _ in Double(rng.nextGaussian()) } }
        let groups = labels.indices.map { "g\($0 / 2)" }
        let folds = GroupedFolds.assign(groups: groups, labels: labels, k: 4, seed: 0)
        let cells = try ProbeCrossValidation.run(candidates: [noise, signal], labels: labels, folds: folds, k: 4, l2s: [0.01, 1])
        #expect(cells.count == 4)
        let best = try #require(ProbeCrossValidation.best(cells))
        #expect(best.candidate == 1 && (best.meanAUROC ?? 0) > 0.9)
        #expect(cells.filter { $0.candidate == 0 }.allSatisfy { ($0.meanAUROC ?? 1) < 0.7 })
        // Every item is scored once, by the model of the fold that left it out.
        #expect(best.outOfFold.allSatisfy(\.isFinite) && best.foldAUROC.count == 4)
        let train = labels.indices.filter { folds[$0] != 0 }, test = labels.indices.filter { folds[$0] == 0 }
        let m = try LogisticRegression.fit(rows: train.map { signal[$0] }, labels: train.map { labels[$0] }, l2: best.l2)
        for i in test { #expect(abs(m.logit(signal[i]) - best.outOfFold[i]) < 1e-6) }
    }
}
