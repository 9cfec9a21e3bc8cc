// Token-level probes: row weights count as repeated rows; the diff marks exactly the tokens outside a
// longest common subsequence (checked against brute force on small sequences); training tokens and
// their class-balancing weights; cross-validation scores items by their maximum and finds a token
// planted among ordinary ones.

import Foundation
import ProbityTensor
import Testing
@testable import ProbityTraining

@Suite struct TokenProbeTests {
    /// A row of weight 2 is that row twice: the same model, to rounding, as duplicating it.
    @Test func weightTwoEqualsARepeatedRow() throws {
        var rng = SplitMix64(seed: 11)
        let rows = (0..<40).map { _ in (0..<4).map { _ in Double(rng.nextGaussian()) } }
        let labels = rows.map { $0[0] + 0.5 * $0[1] + 0.8 * Double(rng.nextGaussian()) > 0 }
        let weights = rows.indices.map { $0 % 3 == 0 ? 2.0 : 1.0 }
        let weighted = try LogisticRegression.fit(rows: rows, labels: labels, weights: weights, l2: 0.05)
        var repeatedRows: [[Double]] = [], repeatedLabels: [Bool] = []
        for i in rows.indices {
            for _ in 0..<Int(weights[i]) { repeatedRows.append(rows[i]); repeatedLabels.append(labels[i]) }
        }
        let repeated = try LogisticRegression.fit(rows: repeatedRows, labels: repeatedLabels, l2: 0.05)
        for (a, b) in zip(weighted.weights + [weighted.bias], repeated.weights + [repeated.bias]) {
            #expect(abs(a - b) < 1e-9, "\(a) vs \(b)")
        }
        // And unit weights are the unweighted fit, bit for bit.
        let unit = try LogisticRegression.fit(rows: rows, labels: labels, weights: rows.map { _ in 1 }, l2: 0.05)
        let plain = try LogisticRegression.fit(rows: rows, labels: labels, l2: 0.05)
        #expect(unit == plain)
        // A row of weight 0 is no row at all.
        let dropped = try LogisticRegression.fit(rows: rows + [[50, -50, 3, 1]], labels: labels + [true],
                                                 weights: rows.map { _ in 1 } + [0], l2: 0.05)
        #expect(zip(dropped.weights, plain.weights).allSatisfy { abs($0 - $1) < 1e-9 })
        #expect(throws: TrainingError.self) {
            try LogisticRegression.fit(rows: rows, labels: labels, weights: [1, 2], l2: 0.05)
        }
        #expect(throws: TrainingError.self) {
            try LogisticRegression.fit(rows: rows, labels: labels, weights: rows.map { _ in -1 }, l2: 0.05)
        }
    }

    @Test func unmatchedMarksTheInsertedTokens() {
        #expect(TokenProbeLabels.unmatched([1, 2, 9, 9, 3, 4], against: [1, 2, 3, 4]) == [2, 3])
        #expect(TokenProbeLabels.unmatched([5, 6], against: [7, 6]) == [0])
        #expect(TokenProbeLabels.unmatched([1, 2, 3], against: [1, 2, 3]) == [])
        #expect(TokenProbeLabels.unmatched([1, 2], against: []) == [0, 1])
        #expect(TokenProbeLabels.unmatched([], against: [1]) == [])
    }

    /// On random short sequences: the kept tokens are a common subsequence, of the longest length
    /// (brute force over every subsequence of `a`).
    @Test func unmatchedKeepsALongestCommonSubsequence() {
        var rng = SplitMix64(seed: 3)
        func isSubsequence(_ x: [Int], of y: [Int]) -> Bool {
            var j = 0
            for v in y where j < x.count && x[j] == v { j += 1 }
            return j == x.count
        }
        for _ in 0..<200 {
            let a = (0..<Int(rng.next() % 8)).map { _ in Int(rng.next() % 3) }
            let b = (0..<Int(rng.next() % 8)).map { _ in Int(rng.next() % 3) }
            let marked = Set(TokenProbeLabels.unmatched(a, against: b))
            let kept = a.indices.filter { !marked.contains($0) }.map { a[$0] }
            #expect(isSubsequence(kept, of: b), "\(a) \(b) kept \(kept)")
            var best = 0
            for mask in 0..<(1 << a.count) {
                let sub = a.indices.filter { mask & (1 << $0) != 0 }.map { a[$0] }
                if sub.count > best && isSubsequence(sub, of: b) { best = sub.count }
            }
            #expect(kept.count == best, "\(a) \(b): kept \(kept.count), longest \(best)")
        }
    }

    @Test func rowsLabelTheDiffAndBalanceTheClasses() {
        // Item 0 (positive) pairs with item 1; item 2 is a positive without a partner; item 3 benign.
        let responses = [[1, 2, 7, 3], [1, 2, 3], [4, 4], [5, 6, 8]]
        let rows = TokenProbeLabels.rows(responses: responses, positive: [true, false, true, false], partner: [1, nil, nil, nil])
        let positives = rows.filter(\.label).map { [$0.item, $0.position] }
        #expect(positives == [[0, 2], [2, 0], [2, 1]])
        #expect(rows.filter { !$0.label }.map { [$0.item, $0.position] } == [[1, 0], [1, 1], [1, 2], [3, 0], [3, 1], [3, 2]])
        let wPos = rows.filter(\.label).reduce(0) { $0 + $1.weight }
        let wNeg = rows.filter { !$0.label }.reduce(0) { $0 + $1.weight }
        #expect(abs(wPos - 4.5) < 1e-12 && abs(wNeg - 4.5) < 1e-12)
    }

    /// Items of 6–12 ordinary tokens; a positive is its pair's tokens with one token of a planted
    /// kind (an ordinary token shifted 6 standard deviations along a fixed direction) inserted.
    /// Scored by its maximum, the cross-validated probe finds the positives.
    @Test func crossValidationFindsAPlantedToken() throws {
        var rng = SplitMix64(seed: 5)
        let d = 8
        var plant = (0..<d).map { _ in Double(rng.nextGaussian()) }
        let norm = plant.reduce(0) { $0 + $1 * $1 }.squareRoot()
        plant = plant.map { 6 * $0 / norm }
        var tokens: [[[Double]]] = [], labels: [Bool] = [], responses: [[Int]] = [], partner: [Int?] = []
        for pair in 0..<30 {
            let length = 6 + Int(rng.next() % 7)
            let base = (0..<length).map { _ in (0..<d).map { _ in Double(rng.nextGaussian()) } }
            let ids = (0..<length).map { _ in 100 + Int(rng.next() % 50) }
            // The label-0 item, then the label-1 item: the same tokens with one planted token inserted.
            let at = Int(rng.next() % UInt64(length))
            var planted = base
            planted.insert(zip(base[at], plant).map { $0 + $1 }, at: at)
            var plantedIds = ids
            plantedIds.insert(7, at: at)
            tokens += [base, planted]
            labels += [false, true]
            responses += [ids, plantedIds]
            partner += [nil, 2 * pair]
        }
        let training = TokenProbeLabels.rows(responses: responses, positive: labels, partner: partner)
        #expect(training.count { $0.label } == 30)
        let groups = labels.indices.map { "p\($0 / 2)" }
        let folds = GroupedFolds.assign(groups: groups, labels: labels, k: 5, seed: 1)
        let cells = try ProbeCrossValidation.runTokens(candidates: [tokens], training: training, itemLabels: labels,
                                                       folds: folds, k: 5, l2s: [0.01, 1])
        let best = try #require(ProbeCrossValidation.best(cells))
        let auroc = try #require(ProbeMetrics.auroc(scores: best.outOfFold, labels: labels))
        #expect(auroc > 0.95, "out-of-fold AUROC \(auroc)")
        // A held-out score is the maximum over the item's tokens of the logit of the model fitted
        // on the other folds' training tokens (without a warm start it reaches the same optimum).
        let train = training.filter { folds[$0.item] != 0 }
        let m = try LogisticRegression.fit(rows: train.map { tokens[$0.item][$0.position] }, labels: train.map(\.label),
                                           weights: train.map(\.weight), l2: best.l2)
        for i in labels.indices where folds[i] == 0 {
            let expected = tokens[i].map(m.logit).max() ?? -.infinity
            #expect(abs(best.outOfFold[i] - expected) < 1e-6 * max(1, abs(expected)), "item \(i)")
        }
    }
}
