// Model diffing: the same tokens run through a base model and an adapted one, and every feature's
// value (an SAE latent, a direction's projection, a probe's logit) read under both at each position.
// Per feature: each side's mean, spread, firing frequency and max (FeatureStatistics, one per side),
// the paired per-position change, and where it grew or shrank most (FeatureStatistics over the
// positive and negative parts of the change, whose top contexts are those positions). The ranking
// math is `FeatureChange`'s (docs/diff.md).

import Foundation
import ProbityLM

/// Running paired statistics of `count` features over positions seen by both models.
public struct FeatureDiffStatistics: Sendable {
    public let count: Int
    /// Each side's frequency (value > 0), max and top contexts.
    public private(set) var base: FeatureStatistics
    public private(set) var adapted: FeatureStatistics
    /// Over max(adapted − base, 0) and max(base − adapted, 0): how often and how much each feature
    /// rose or fell, and the contexts where it rose or fell most (one candidate per window).
    public private(set) var increase: FeatureStatistics
    public private(set) var decrease: FeatureStatistics
    // Per feature, sums in Double of the base values and adapted values shifted by the feature's
    // first base value (so variances do not cancel catastrophically), their squares, and of the
    // paired change and its square.
    private var shift: [Double]
    private var sumBase, sumSqBase, sumAdapted, sumSqAdapted, sumChange, sumSqChange: [Double]

    public var positions: Int { base.positions }

    public init(count: Int, options: FeatureStatisticsOptions = FeatureStatisticsOptions()) {
        precondition(count > 0, "no features")
        self.count = count
        base = FeatureStatistics(dSAE: count, options: options)
        adapted = base
        increase = base
        decrease = base
        let zero = [Double](repeating: 0, count: count)
        shift = zero
        sumBase = zero; sumSqBase = zero; sumAdapted = zero; sumSqAdapted = zero; sumChange = zero; sumSqChange = zero
    }

    /// Adds one window: `baseValues` and `adaptedValues` are (rows.count, count) row-major, the
    /// features at the window positions `rows` under each model; `window` all of its tokens.
    public mutating func add(base baseValues: [Float], adapted adaptedValues: [Float], rows: [Int], window: [Int],
                             source: String, document: Int, tokenizer: Tokenizer) throws {
        let n = count, m = rows.count
        precondition(baseValues.count == m * n && adaptedValues.count == m * n, "values do not match the rows")
        guard m > 0 else { return }
        if positions == 0 { for i in 0..<n { shift[i] = Double(baseValues[i]) } }
        var up = [Float](repeating: 0, count: m * n)
        var down = [Float](repeating: 0, count: m * n)
        for r in 0..<m {
            for i in 0..<n {
                let k = r * n + i
                let b = baseValues[k], a = adaptedValues[k]
                let sb = Double(b) - shift[i], sa = Double(a) - shift[i], d = Double(a) - Double(b)
                sumBase[i] += sb; sumSqBase[i] += sb * sb
                sumAdapted[i] += sa; sumSqAdapted[i] += sa * sa
                sumChange[i] += d; sumSqChange[i] += d * d
                if a > b { up[k] = a - b } else if b > a { down[k] = b - a }
            }
        }
        try base.add(SAEEncoding(count: m, dSAE: n, latents: baseValues), rows: rows, window: window, source: source,
                     document: document, tokenizer: tokenizer)
        try adapted.add(SAEEncoding(count: m, dSAE: n, latents: adaptedValues), rows: rows, window: window, source: source,
                        document: document, tokenizer: tokenizer)
        try increase.add(SAEEncoding(count: m, dSAE: n, latents: up), rows: rows, window: window, source: source,
                         document: document, tokenizer: tokenizer)
        try decrease.add(SAEEncoding(count: m, dSAE: n, latents: down), rows: rows, window: window, source: source,
                         document: document, tokenizer: tokenizer)
    }

    /// Feature `i`'s change.
    public func change(_ i: Int) -> FeatureChange {
        let n = Double(max(positions, 1))
        func moments(_ s: Double, _ sq: Double) -> (mean: Double, variance: Double) {
            let mean = s / n
            return (mean, max(sq / n - mean * mean, 0))
        }
        let b = moments(sumBase[i], sumSqBase[i]), a = moments(sumAdapted[i], sumSqAdapted[i])
        let d = moments(sumChange[i], sumSqChange[i])
        return FeatureChange(
            index: i, positions: positions,
            meanBase: b.mean + shift[i], meanAdapted: a.mean + shift[i],
            sdBase: b.variance.squareRoot(), sdAdapted: a.variance.squareRoot(),
            meanChange: d.mean, sdChange: d.variance.squareRoot(),
            frequencyBase: base.frequency(i), frequencyAdapted: adapted.frequency(i),
            maxBase: base.maxActivations[i], maxAdapted: adapted.maxActivations[i],
            largestIncrease: increase.maxActivations[i], largestDecrease: decrease.maxActivations[i],
            changedPositions: increase.counts[i] + decrease.counts[i])
    }

    /// Every feature's change, ranked by `key` (FeatureChange.ranked).
    public func ranked(by key: FeatureDiffRanking) -> [FeatureChange] {
        FeatureChange.ranked((0..<count).map(change), by: key)
    }
}

extension SAEEncoding {
    /// Feature values that did not come from an SAE's encoder (directions, probes, changes), so
    /// FeatureStatistics can read them.
    init(count: Int, dSAE: Int, latents: [Float]) {
        self.init(count: count, dSAE: dSAE, latents: latents, scales: [Float](repeating: 1, count: count),
                  ranked: [[Int]?](repeating: nil, count: count))
    }
}

/// What ranks the features of a diff.
public enum FeatureDiffRanking: String, Sendable, CaseIterable, Codable {
    /// max(|mean effect|, |frequency effect|): the default.
    case score
    /// |mean effect|: the change in mean over the pooled standard deviation.
    case mean
    /// |frequency effect|: Cohen's h between the firing frequencies.
    case frequency
    /// |paired effect|: the mean per-position change over its standard deviation.
    case paired
    /// The largest per-position change either way.
    case peak
}

/// How one feature's statistics differ between the base and the adapted model on the same
/// positions (population moments over the N positions):
///
/// - mean effect = (mean_a − mean_b) / √((var_b + var_a) / 2), a standardised change in mean
///   (Cohen's d with the two sides' pooled standard deviation);
/// - frequency effect = 2·asin √f_a − 2·asin √f_b, Cohen's h between the fractions of positions
///   where the feature is above 0 (so 0 → 1% scores 0.20, 50% → 51% 0.02);
/// - paired effect = mean(a − b) / sd(a − b) over the positions (Cohen's d_z);
/// - score = max(|mean effect|, |frequency effect|).
///
/// An effect whose denominator is 0 is 0 when its numerator is, else ±infinity.
public struct FeatureChange: Sendable, Equatable {
    public var index: Int
    public var positions: Int
    public var meanBase: Double, meanAdapted: Double
    public var sdBase: Double, sdAdapted: Double
    /// Mean and standard deviation of the per-position change adapted − base.
    public var meanChange: Double, sdChange: Double
    public var frequencyBase: Double, frequencyAdapted: Double
    /// Largest value above 0 on each side (0 when never above 0).
    public var maxBase: Float, maxAdapted: Float
    /// Largest adapted − base and base − adapted at one position (0 when it never rose / fell).
    public var largestIncrease: Float, largestDecrease: Float
    /// Positions where the value differs at all.
    public var changedPositions: Int

    public init(index: Int, positions: Int, meanBase: Double, meanAdapted: Double, sdBase: Double, sdAdapted: Double,
                meanChange: Double, sdChange: Double, frequencyBase: Double, frequencyAdapted: Double,
                maxBase: Float, maxAdapted: Float, largestIncrease: Float, largestDecrease: Float, changedPositions: Int) {
        self.index = index
        self.positions = positions
        self.meanBase = meanBase
        self.meanAdapted = meanAdapted
        self.sdBase = sdBase
        self.sdAdapted = sdAdapted
        self.meanChange = meanChange
        self.sdChange = sdChange
        self.frequencyBase = frequencyBase
        self.frequencyAdapted = frequencyAdapted
        self.maxBase = maxBase
        self.maxAdapted = maxAdapted
        self.largestIncrease = largestIncrease
        self.largestDecrease = largestDecrease
        self.changedPositions = changedPositions
    }

    /// `numerator / denominator`, 0 for 0/0 and ±infinity for x/0.
    static func ratio(_ numerator: Double, _ denominator: Double) -> Double {
        if denominator > 0 { return numerator / denominator }
        return numerator == 0 ? 0 : (numerator > 0 ? .infinity : -.infinity)
    }

    public var meanEffect: Double {
        Self.ratio(meanChange, ((sdBase * sdBase + sdAdapted * sdAdapted) / 2).squareRoot())
    }

    public var frequencyEffect: Double {
        2 * asin(frequencyAdapted.squareRoot()) - 2 * asin(frequencyBase.squareRoot())
    }

    public var pairedEffect: Double { Self.ratio(meanChange, sdChange) }

    public var score: Double { max(abs(meanEffect), abs(frequencyEffect)) }

    /// The largest per-position change either way.
    public var peak: Double { Double(max(largestIncrease, largestDecrease)) }

    /// The value `key` ranks by (larger first).
    public func rankValue(_ key: FeatureDiffRanking) -> Double {
        switch key {
        case .score: return score
        case .mean: return abs(meanEffect)
        case .frequency: return abs(frequencyEffect)
        case .paired: return abs(pairedEffect)
        case .peak: return peak
        }
    }

    /// `changes` ordered by `key`'s value, largest first; ties by |mean change|, then the lower index.
    public static func ranked(_ changes: [FeatureChange], by key: FeatureDiffRanking) -> [FeatureChange] {
        changes.map { ($0, $0.rankValue(key), abs($0.meanChange)) }
            .sorted { x, y in
                if x.1 != y.1 { return x.1 > y.1 }
                if x.2 != y.2 { return x.2 > y.2 }
                return x.0.index < y.0.index
            }
            .map(\.0)
    }
}

/// The feature values a pack reads from activations: an SAE's latents, each direction's projection
/// on its unit vector, or a probe's logit; per position, in the pack's feature order.
public enum FeatureColumns {
    /// Features of `pack`: an SAE's latent count, its directions, or 1 for a probe.
    public static func count(_ pack: FeaturePack) -> Int {
        if let sae = pack.sae { return sae.dSAE }
        if pack.probe != nil { return 1 }
        return pack.directions.count
    }

    /// Feature `i`'s id (a latent index, a direction's or the probe's name) and label name, if any.
    public static func id(_ pack: FeaturePack, _ i: Int) -> (id: String, name: String?) {
        let id: String
        if pack.sae != nil {
            id = String(i)
        } else if let probe = pack.probe {
            id = probe.name
        } else {
            id = i < pack.directions.count ? pack.directions[i].name : String(i)
        }
        return (id, pack.labels[id]?.name)
    }

    /// The hook points the pack reads.
    public static func points(_ pack: FeaturePack) -> [HookPoint] {
        if pack.sae != nil || pack.probe != nil { return [pack.hook] }
        var seen: [HookPoint] = []
        for d in pack.directions where !seen.contains(d.point) { seen.append(d.point) }
        return seen
    }

    /// (count, features) row-major: the pack's features at `count` positions, whose activations at
    /// each hook point `rows(point)` gives (count × width, row-major).
    public static func values(_ pack: FeaturePack, count: Int, width: Int, rows: (HookPoint) -> [Float]) -> [Float] {
        guard count > 0 else { return [] }
        if let sae = pack.sae {
            let x = rows(pack.hook)
            precondition(x.count == count * width, "rows do not match the count")
            return x.withUnsafeBufferPointer { sae.encode($0.baseAddress!, count: count).latents }
        }
        if let probe = pack.probe {
            let x = rows(pack.hook)
            precondition(x.count == count * width, "rows do not match the count")
            return x.withUnsafeBufferPointer { p in (0..<count).map { probe.logit(p.baseAddress! + $0 * width) } }
        }
        let k = pack.directions.count
        var out = [Float](repeating: 0, count: count * k)
        for (j, d) in pack.directions.enumerated() {
            let x = rows(d.point)
            precondition(x.count == count * width, "rows do not match the count")
            x.withUnsafeBufferPointer { p in
                for r in 0..<count { out[r * k + j] = unitProjection(p.baseAddress! + r * width, d.vector) }
            }
        }
        return out
    }
}
