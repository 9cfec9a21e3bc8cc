// Choosing a probe's layer and L2 strength by k-fold cross-validation on the training data only,
// with folds grouped by matched pair so both halves of a pair are held out together (otherwise a
// probe could score a pair by remembering its conversation). AUROC with ties counted half, as
// `probity eval` and scripts/pick-threshold count them.

import Foundation
import ProbityTensor

/// Fold assignment that keeps each group (a matched pair) in one fold.
public enum GroupedFolds {
    /// A fold in 0..<k for each item. Groups are shuffled with `seed` and dealt round robin, those
    /// holding a positive first, so every fold gets its share of positives; `groups[i]` is item i's
    /// group (its `pair`, or its own id when it has none).
    public static func assign(groups: [String], labels: [Bool], k: Int, seed: UInt64) -> [Int] {
        precondition(k >= 1 && groups.count == labels.count, "folds: k ≥ 1 and one label per group entry")
        var positive: [String: Bool] = [:]
        for (g, l) in zip(groups, labels) { positive[g] = (positive[g] ?? false) || l }
        var rng = SplitMix64(seed: seed)
        let withPositive = positive.keys.filter { positive[$0] == true }.sorted().shuffled(using: &rng)
        let without = positive.keys.filter { positive[$0] != true }.sorted().shuffled(using: &rng)
        var fold: [String: Int] = [:]
        for (n, g) in (withPositive + without).enumerated() { fold[g] = n % k }
        return groups.map { fold[$0] ?? 0 }
    }
}

/// AUROC of scores against labels.
public enum ProbeMetrics {
    /// P(score of a positive > score of a negative) + ½ P(equal); nil without both labels.
    /// - Complexity: O(n log n).
    public static func auroc(scores: [Double], labels: [Bool]) -> Double? {
        let nPos = labels.count { $0 }, nNeg = labels.count - nPos
        guard nPos > 0, nNeg > 0 else { return nil }
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        // Mid-ranks (1-based) over runs of equal scores; the Mann–Whitney U of the positives.
        var rankSum = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let mid = Double(i + j) / 2 + 1
            for k in i...j where labels[order[k]] { rankSum += mid }
            i = j + 1
        }
        return (rankSum - Double(nPos) * Double(nPos + 1) / 2) / (Double(nPos) * Double(nNeg))
    }
}

/// Cross-validation of logistic-regression probes over candidate feature sets (one per layer) and
/// L2 strengths.
public enum ProbeCrossValidation {
    /// The L2 strengths `--l2 auto` tries.
    public static let autoL2: [Double] = [1e-4, 1e-3, 1e-2, 1e-1, 1, 10]

    /// One candidate at one λ.
    public struct Cell: Sendable {
        public var candidate: Int
        public var l2: Double
        /// Per fold, the AUROC on its held-out items (nil when it holds only one label).
        public var foldAUROC: [Double?]
        /// Each item's logit from the model that did not see it.
        public var outOfFold: [Double]

        /// The mean of the defined fold AUROCs.
        public var meanAUROC: Double? {
            let v = foldAUROC.compactMap { $0 }
            return v.isEmpty ? nil : v.reduce(0, +) / Double(v.count)
        }
    }

    /// Fits every candidate (rows per item) at every λ on each fold's complement and scores the fold.
    /// `folds[i]` is item i's fold in 0..<k. `progress` is called after each candidate.
    public static func run(candidates: [[[Double]]], labels: [Bool], folds: [Int], k: Int, l2s: [Double],
                           progress: (Int) -> Void = { _ in }) throws -> [Cell] {
        guard !l2s.isEmpty else { throw TrainingError.badArgument(name: "l2", expected: "at least one value", found: "none") }
        var cells: [Cell] = []
        // Larger λ first: each fit starts from the previous one's optimum (a regularisation path).
        let path = l2s.sorted(by: >)
        for (c, rows) in candidates.enumerated() {
            var byL2: [Double: Cell] = [:]
            for l in path { byL2[l] = Cell(candidate: c, l2: l, foldAUROC: [], outOfFold: [Double](repeating: .nan, count: labels.count)) }
            for f in 0..<k {
                let train = labels.indices.filter { folds[$0] != f }
                let test = labels.indices.filter { folds[$0] == f }
                var previous: LogisticRegression?
                for l in path {
                    guard var cell = byL2[l] else { continue }
                    let model = try LogisticRegression.fit(rows: train.map { rows[$0] }, labels: train.map { labels[$0] },
                                                           l2: l, start: previous)
                    previous = model
                    let scores = test.map { model.logit(rows[$0]) }
                    for (i, s) in zip(test, scores) { cell.outOfFold[i] = s }
                    cell.foldAUROC.append(ProbeMetrics.auroc(scores: scores, labels: test.map { labels[$0] }))
                    byL2[l] = cell
                }
            }
            cells += l2s.compactMap { byL2[$0] }
            progress(c)
        }
        return cells
    }

    /// The best cell: highest mean AUROC; ties go to the larger λ, then the earlier candidate.
    public static func best(_ cells: [Cell]) -> Cell? {
        cells.max { a, b in
            let x = a.meanAUROC ?? -1, y = b.meanAUROC ?? -1
            if x != y { return x < y }
            if a.l2 != b.l2 { return a.l2 < b.l2 }
            return a.candidate > b.candidate
        }
    }
}
