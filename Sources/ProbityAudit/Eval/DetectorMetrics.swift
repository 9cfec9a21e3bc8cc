// Detection metrics for rules as measuring instruments: AUROC (the Mann–Whitney statistic, ties
// counted half), a stratified percentile-bootstrap interval for it, and rates at a threshold.
// Plain, exact code on small n (hundreds of items), tested against hand-computed cases.

import ProbityTensor

/// Scores of labelled items, higher meaning "more like the concept".
public enum DetectorMetrics {
    /// P(score of a random positive > score of a random negative) + ½·P(tie); nil when either side
    /// is empty. Computed from average ranks, O(n log n).
    public static func auroc(positives: [Double], negatives: [Double]) -> Double? {
        guard !positives.isEmpty, !negatives.isEmpty else { return nil }
        var all = positives.map { ($0, true) } + negatives.map { ($0, false) }
        all.sort { $0.0 < $1.0 }
        var rankSum = 0.0
        var i = 0
        while i < all.count {
            var j = i
            while j + 1 < all.count && all[j + 1].0 == all[i].0 { j += 1 }
            // Ranks i+1 … j+1 share their average.
            let average = Double(i + j + 2) / 2
            for k in i...j where all[k].1 { rankSum += average }
            i = j + 1
        }
        let p = Double(positives.count), n = Double(negatives.count)
        return (rankSum - p * (p + 1) / 2) / (p * n)
    }

    /// A 95% percentile interval of the AUROC from `resamples` stratified bootstrap resamples
    /// (positives and negatives each drawn with replacement at their own size), seeded so the same
    /// data gives the same interval.
    public static func bootstrapInterval(positives: [Double], negatives: [Double], resamples: Int = 1000,
                                         seed: UInt64 = 0x5EED) -> (low: Double, high: Double)? {
        guard !positives.isEmpty, !negatives.isEmpty, resamples > 0 else { return nil }
        var rng = SplitMix64(seed: seed)
        var values: [Double] = []
        values.reserveCapacity(resamples)
        for _ in 0..<resamples {
            let p = positives.indices.map { _ in positives[Int(rng.next() % UInt64(positives.count))] }
            let n = negatives.indices.map { _ in negatives[Int(rng.next() % UInt64(negatives.count))] }
            if let a = auroc(positives: p, negatives: n) { values.append(a) }
        }
        values.sort()
        return (quantile(values, 0.025), quantile(values, 0.975))
    }

    /// The q-quantile of sorted values, linearly interpolated.
    static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let x = q * Double(sorted.count - 1)
        let lo = Int(x.rounded(.down))
        guard lo < sorted.count - 1 else { return sorted[sorted.count - 1] }
        return sorted[lo] + (sorted[lo + 1] - sorted[lo]) * (x - Double(lo))
    }

    /// The fraction of `fires` that are true; nil for none.
    public static func rate(_ fires: [Bool]) -> Double? {
        fires.isEmpty ? nil : Double(fires.filter { $0 }.count) / Double(fires.count)
    }
}
