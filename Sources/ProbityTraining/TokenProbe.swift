// Token-level probes: a logistic-regression probe trained on single tokens and read as the maximum
// of its logit over a response (a rule with scope response and aggregate max), the way per-token
// deception probes are read. A concept in a matched pair lives in the tokens where the two
// responses differ (the planted line of backdoored code, the claim an answer sides with), so those
// tokens of the label-1 response are the positives; every token of a label-0 or benign response is
// a negative; the label-1 response's tokens shared with its partner are left out (the same text in
// both, so neither label fits them).

import Foundation

/// Which response tokens a token-level probe learns from, and with what label and weight.
public enum TokenProbeLabels {
    /// A training token: item, position in its response, label, and row weight.
    public struct Row: Sendable, Equatable {
        public var item: Int
        public var position: Int
        public var label: Bool
        public var weight: Double
    }

    /// The positions of `a` outside one longest common subsequence of `a` and `b` (the tokens a diff
    /// marks as inserted or changed in `a`), ascending. Ties go to the earliest match in `a`.
    /// - Complexity: O(|a|·|b|).
    public static func unmatched(_ a: [Int], against b: [Int]) -> [Int] {
        let n = a.count, m = b.count
        guard n > 0 else { return [] }
        guard m > 0 else { return Array(0..<n) }
        // lcs[i][j]: the LCS length of a[i...] and b[j...], row-major in one buffer.
        var lcs = [Int](repeating: 0, count: (n + 1) * (m + 1))
        for i in stride(from: n - 1, through: 0, by: -1) {
            for j in stride(from: m - 1, through: 0, by: -1) {
                lcs[i * (m + 1) + j] = a[i] == b[j]
                    ? lcs[(i + 1) * (m + 1) + j + 1] + 1
                    : max(lcs[(i + 1) * (m + 1) + j], lcs[i * (m + 1) + j + 1])
            }
        }
        var out: [Int] = []
        var i = 0, j = 0
        while i < n && j < m {
            if a[i] == b[j] {
                i += 1; j += 1
            } else if lcs[(i + 1) * (m + 1) + j] >= lcs[i * (m + 1) + j + 1] {
                out.append(i); i += 1
            } else {
                j += 1
            }
        }
        while i < n { out.append(i); i += 1 }
        return out
    }

    /// The training tokens of items with response token ids `responses`, labels `positive` (the
    /// target concept, label 1), and `partner[i]`: the index of item i's matched label-0 response,
    /// if it has one. A positive item with a partner contributes its unmatched tokens as positives
    /// (none if the two responses are the same tokens); one without contributes every token as a
    /// positive; a negative item contributes every token as a negative. Weights balance the classes:
    /// the positives' weights and the negatives' weights each sum to half the number of rows.
    public static func rows(responses: [[Int]], positive: [Bool], partner: [Int?]) -> [Row] {
        var out: [Row] = []
        for (i, tokens) in responses.enumerated() {
            if positive[i] {
                let marked: [Int]
                if let p = partner[i], p >= 0, p < responses.count {
                    marked = unmatched(tokens, against: responses[p])
                } else {
                    marked = Array(tokens.indices)
                }
                out += marked.map { Row(item: i, position: $0, label: true, weight: 1) }
            } else {
                out += tokens.indices.map { Row(item: i, position: $0, label: false, weight: 1) }
            }
        }
        let nPos = out.count { $0.label }, nNeg = out.count - nPos
        guard nPos > 0, nNeg > 0 else { return out }
        let half = Double(out.count) / 2
        for k in out.indices { out[k].weight = half / Double(out[k].label ? nPos : nNeg) }
        return out
    }
}

extension ProbeCrossValidation {
    /// Cross-validation of token-level probes. `candidates[c][item]` holds every response token's
    /// activations of one item at candidate c (one row per token); `training` the tokens learned
    /// from (`TokenProbeLabels.rows`); `itemLabels` and `folds` are per item. Each fold's model is
    /// fitted on the training tokens of the other folds' items and scores each held-out item as the
    /// maximum of its logit over all its tokens; a cell's `outOfFold` holds those item scores and
    /// its fold AUROCs are item-level.
    public static func runTokens(candidates: [[[[Double]]]], training: [TokenProbeLabels.Row], itemLabels: [Bool],
                                 folds: [Int], k: Int, l2s: [Double],
                                 progress: (Int) -> Void = { _ in }) throws -> [Cell] {
        guard !l2s.isEmpty else { throw TrainingError.badArgument(name: "l2", expected: "at least one value", found: "none") }
        var cells: [Cell] = []
        let path = l2s.sorted(by: >)
        for (c, tokens) in candidates.enumerated() {
            var byL2: [Double: Cell] = [:]
            for l in path { byL2[l] = Cell(candidate: c, l2: l, foldAUROC: [], outOfFold: [Double](repeating: .nan, count: itemLabels.count)) }
            for f in 0..<k {
                let train = training.filter { folds[$0.item] != f }
                let rows = train.map { tokens[$0.item][$0.position] }
                let test = itemLabels.indices.filter { folds[$0] == f }
                var previous: LogisticRegression?
                for l in path {
                    guard var cell = byL2[l] else { continue }
                    let model = try LogisticRegression.fit(rows: rows, labels: train.map(\.label), weights: train.map(\.weight),
                                                           l2: l, start: previous)
                    previous = model
                    let scores = test.map { i in model.maxLogit(tokens[i]) }
                    for (i, s) in zip(test, scores) { cell.outOfFold[i] = s }
                    cell.foldAUROC.append(ProbeMetrics.auroc(scores: scores, labels: test.map { itemLabels[$0] }))
                    byL2[l] = cell
                }
            }
            cells += l2s.compactMap { byL2[$0] }
            progress(c)
        }
        return cells
    }
}

extension LogisticRegression {
    /// The largest logit over `rows` (−∞ for none): a rule's `aggregate: max` over the same tokens.
    public func maxLogit(_ rows: [[Double]]) -> Double {
        rows.reduce(-Double.infinity) { max($0, logit($1)) }
    }
}
