// FeatureDiffStatistics against a plain recomputation: every per-feature statistic and effect of
// FeatureChange, and the ranking, recomputed from the same values by the formulas of docs/diff.md.

import Foundation
import Testing
import ProbityFeatures
import ProbityFormats
import ProbityLM
import ProbityTensor

@Suite struct FeatureDiffTests {
    let tokenizer: Tokenizer

    init() throws { tokenizer = try Tokenizer(gguf: try GGUFFile(path: try ModelLocator.resolve("default"))) }

    /// Five features over three windows: 0 dead on both sides, 1 identical on both, 2 sparse and
    /// raised at a few positions, 3 dense and shifted with noise, 4 a constant shift of a varying
    /// value (paired sd 0: infinite paired effect). Values are base (b) and adapted (a), per window
    /// (rows × 5, row-major).
    static func data() -> [(b: [Float], a: [Float], rows: Int)] {
        var rng = Xoshiro256StarStar(seed: 7)
        func u() -> Float { Float(rng.nextUnitDouble()) }
        var out: [(b: [Float], a: [Float], rows: Int)] = []
        for rows in [7, 12, 5] {
            var b = [Float](repeating: 0, count: rows * 5), a = b
            for r in 0..<rows {
                let same = u() < 0.5 ? 0 : 3 * u()
                b[r * 5 + 1] = same; a[r * 5 + 1] = same
                let sparse: Float = u() < 0.2 ? 2 * u() : 0
                b[r * 5 + 2] = sparse
                a[r * 5 + 2] = u() < 0.3 ? sparse + 1.5 * u() : sparse
                b[r * 5 + 3] = 1 + u() - 0.5
                a[r * 5 + 3] = b[r * 5 + 3] + 0.4 + 0.2 * (u() - 0.5)
                b[r * 5 + 4] = 10 + 4 * u()
                a[r * 5 + 4] = b[r * 5 + 4] - 0.25
            }
            out.append((b, a, rows))
        }
        return out
    }

    @Test func statisticsAndEffectsMatchAPlainRecomputation() throws {
        let windows = Self.data()
        var stats = FeatureDiffStatistics(count: 5)
        for (k, w) in windows.enumerated() {
            let tokens = Array(100..<(100 + w.rows))
            try stats.add(base: w.b, adapted: w.a, rows: Array(0..<w.rows), window: tokens, source: "s", document: k, tokenizer: tokenizer)
        }
        let n = windows.map(\.rows).reduce(0, +)
        #expect(stats.positions == n)
        for i in 0..<5 {
            let b = windows.flatMap { w in (0..<w.rows).map { Double(w.b[$0 * 5 + i]) } }
            let a = windows.flatMap { w in (0..<w.rows).map { Double(w.a[$0 * 5 + i]) } }
            let d = zip(a, b).map { $0 - $1 }
            func mean(_ x: [Double]) -> Double { x.reduce(0, +) / Double(x.count) }
            func sd(_ x: [Double]) -> Double { let m = mean(x); return (x.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(x.count)).squareRoot() }
            func freq(_ x: [Double]) -> Double { Double(x.filter { $0 > 0 }.count) / Double(x.count) }
            let c = stats.change(i)
            let tol = 1e-9
            #expect(abs(c.meanBase - mean(b)) <= tol && abs(c.meanAdapted - mean(a)) <= tol, "feature \(i)")
            #expect(abs(c.sdBase - sd(b)) <= 1e-6 && abs(c.sdAdapted - sd(a)) <= 1e-6, "feature \(i)")
            #expect(abs(c.meanChange - mean(d)) <= tol && abs(c.sdChange - sd(d)) <= 1e-6, "feature \(i)")
            #expect(c.frequencyBase == freq(b) && c.frequencyAdapted == freq(a))
            #expect(Double(c.maxBase) == max(b.max() ?? 0, 0) && Double(c.maxAdapted) == max(a.max() ?? 0, 0))
            #expect(Double(c.largestIncrease) == max(d.max() ?? 0, 0) && Double(c.largestDecrease) == max(-(d.min() ?? 0), 0))
            #expect(c.changedPositions == d.filter { $0 != 0 }.count)
            let pooled = ((sd(b) * sd(b) + sd(a) * sd(a)) / 2).squareRoot()
            let h = 2 * asin(freq(a).squareRoot()) - 2 * asin(freq(b).squareRoot())
            #expect(abs(c.frequencyEffect - h) <= tol)
            if pooled > 0 { #expect(abs(c.meanEffect - mean(d) / pooled) <= 1e-6 * max(1, abs(c.meanEffect)), "feature \(i)") }
            if i == 4 {
                #expect(c.pairedEffect == -.infinity, "a constant shift has no spread: \(c.sdChange)")
            } else if sd(d) > 0 {
                #expect(abs(c.pairedEffect - mean(d) / sd(d)) <= 1e-6 * max(1, abs(c.pairedEffect)))
            }
            #expect(c.score == max(abs(c.meanEffect), abs(c.frequencyEffect)))
        }
        // Dead and identical features change nowhere and score 0.
        for i in [0, 1] {
            let c = stats.change(i)
            #expect(c.meanChange == 0 && c.changedPositions == 0 && c.score == 0 && c.pairedEffect == 0 && c.meanEffect == 0)
        }
        // Rankings: by the key's value, then |mean change|, then index.
        for key in FeatureDiffRanking.allCases {
            let ranked = stats.ranked(by: key).map(\.index)
            let plain = (0..<5).map { stats.change($0) }.sorted { x, y in
                let vx = x.rankValue(key), vy = y.rankValue(key)
                if vx != vy { return vx > vy }
                if abs(x.meanChange) != abs(y.meanChange) { return abs(x.meanChange) > abs(y.meanChange) }
                return x.index < y.index
            }.map(\.index)
            #expect(ranked == plain, "\(key)")
            #expect(Array(ranked.suffix(2)) == [0, 1], "\(key): unchanged features last")
        }
        #expect(stats.ranked(by: .paired).first?.index == 4)
        // Where feature 2 rose most: a context peaking at the largest increase.
        let top = try #require(stats.increase.contexts(2).first)
        #expect(abs(top.peakActivation - stats.change(2).largestIncrease) <= 1e-2 * stats.change(2).largestIncrease)
    }

    @Test func identicalSidesGiveNoChange() throws {
        var stats = FeatureDiffStatistics(count: 5)
        for (k, w) in Self.data().enumerated() {
            try stats.add(base: w.b, adapted: w.b, rows: Array(0..<w.rows), window: Array(100..<(100 + w.rows)), source: "s",
                          document: k, tokenizer: tokenizer)
        }
        for i in 0..<5 {
            let c = stats.change(i)
            #expect(c.meanChange == 0 && c.sdChange == 0 && c.changedPositions == 0 && c.score == 0 && c.frequencyEffect == 0)
            #expect(c.largestIncrease == 0 && c.largestDecrease == 0)
            #expect(stats.increase.contexts(i).isEmpty && stats.decrease.contexts(i).isEmpty)
        }
    }

    /// The effect arithmetic at its edges: 0/0 is 0, x/0 is ±infinity, Cohen's h of 0 → 1% is 0.2.
    @Test func effectEdges() {
        func change(meanChange: Double, sd: Double, fb: Double, fa: Double) -> FeatureChange {
            FeatureChange(index: 0, positions: 10, meanBase: 0, meanAdapted: meanChange, sdBase: sd, sdAdapted: sd,
                          meanChange: meanChange, sdChange: sd, frequencyBase: fb, frequencyAdapted: fa,
                          maxBase: 0, maxAdapted: 0, largestIncrease: 0, largestDecrease: 0, changedPositions: 0)
        }
        #expect(change(meanChange: 0, sd: 0, fb: 0, fa: 0).meanEffect == 0)
        #expect(change(meanChange: 1, sd: 0, fb: 0, fa: 0).meanEffect == .infinity)
        #expect(change(meanChange: -1, sd: 0, fb: 0, fa: 0).pairedEffect == -.infinity)
        #expect(abs(change(meanChange: 0, sd: 1, fb: 0, fa: 0.01).frequencyEffect - 0.2003) < 1e-4)
        #expect(change(meanChange: 2, sd: 4, fb: 0, fa: 0).meanEffect == 0.5)
    }
}
