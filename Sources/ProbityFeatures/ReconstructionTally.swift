// How much of a set of positions an SAE's reconstruction leaves unexplained, as SAELens reports it:
// FVU = Σ‖x − x̂‖² / Σ‖x − x̄‖², x̄ the mean of those same positions. Kept as running sums in float64
// (Welford's mean and centred sum of squares; Chan et al.'s rule joins two sets), so cases and
// shards combine into the FVU of all their positions without keeping the activations.

import ProbityLM

/// Running sums for the fraction of variance unexplained over a set of positions.
public struct ReconstructionTally: Sendable, Equatable {
    /// Positions added.
    public private(set) var count: Int
    /// Σ‖x − x̂‖².
    public private(set) var squaredError: Double
    /// Σ‖x − x̄‖²: the positions' total variance about their mean.
    public private(set) var totalVariance: Double
    /// x̄, the positions' mean (empty before the first position).
    public private(set) var mean: [Double]

    /// No positions yet.
    public init() {
        count = 0
        squaredError = 0
        totalVariance = 0
        mean = []
    }

    /// Sums as a report records them. Nil when they cannot describe a set of positions (a negative
    /// or non-finite sum, or a mean present exactly when `count` is zero).
    public init?(count: Int, squaredError: Double, totalVariance: Double, mean: [Double]) {
        guard count >= 0, squaredError >= 0, totalVariance >= 0, squaredError.isFinite, totalVariance.isFinite,
              (count == 0) == mean.isEmpty, mean.allSatisfy(\.isFinite) else { return nil }
        self.count = count
        self.squaredError = squaredError
        self.totalVariance = totalVariance
        self.mean = mean
    }

    /// Σ‖x − x̂‖² / Σ‖x − x̄‖²; nil without positions or variance (a single position, or identical ones).
    public var fvu: Double? { count > 0 && totalVariance > 0 ? squaredError / totalVariance : nil }

    /// Adds one position: its activation `x` and reconstruction `xHat`, `width` floats each.
    /// - Complexity: O(width).
    public mutating func add(_ x: UnsafePointer<Float>, reconstruction xHat: UnsafePointer<Float>, width: Int) {
        if count == 0 { mean = [Double](repeating: 0, count: width) }
        precondition(mean.count == width, "a position of width \(width) added to positions of width \(mean.count)")
        count += 1
        let n = Double(count)
        for j in 0..<width {
            let v = Double(x[j])
            let e = v - Double(xHat[j])
            squaredError += e * e
            let before = v - mean[j]
            mean[j] += before / n
            totalVariance += before * (v - mean[j])
        }
    }

    /// Joins another set of positions: the sums of their union.
    /// - Complexity: O(width).
    public mutating func merge(_ other: ReconstructionTally) {
        guard other.count > 0 else { return }
        guard count > 0 else { self = other; return }
        precondition(mean.count == other.mean.count, "positions of width \(other.mean.count) joined to width \(mean.count)")
        let na = Double(count), nb = Double(other.count), n = na + nb
        var shift = 0.0
        for j in mean.indices {
            let delta = other.mean[j] - mean[j]
            shift += delta * delta
            mean[j] += delta * nb / n
        }
        totalVariance += other.totalVariance + shift * na * nb / n
        squaredError += other.squaredError
        count += other.count
    }
}

/// One position's relative squared error ‖x − x̂‖² / ‖x‖²: the reconstruction error as a share of
/// the activation's own squared norm. Not a fraction of variance: it does not centre on any mean, so
/// positions that share a large common component look well explained (see `ReconstructionTally`).
public func relativeSquaredError(_ x: UnsafePointer<Float>, _ xHat: UnsafePointer<Float>, count d: Int) -> Double {
    var err = 0.0, norm = 0.0
    for j in 0..<d {
        let e = Double(x[j]) - Double(xHat[j])
        err += e * e
        norm += Double(x[j]) * Double(x[j])
    }
    return norm > 0 ? err / norm : (err > 0 ? .infinity : 0)
}

/// The positions an FVU over a sequence should count: not position 0, the attention sink (whatever
/// its token, its activation's norm is many times any other's, and its variance would swamp the
/// rest's), and not special tokens (chat-template markers), which SAE training skips.
public func countsForFVU(_ tokenizer: Tokenizer) -> @Sendable (_ position: Int, _ token: Int) -> Bool {
    { position, token in position > 0 && !tokenizer.isSpecial(token) }
}
