// A latent's activation histogram over a statistics scan: every position where it fired (> 0),
// counted exactly in equal-width bins on [0, upper], upper being its max activation over the scan.

/// Counts of a latent's firing activations in `counts.count` equal-width bins on [0, `upper`].
///
/// Bin `j` holds the values `v` with `edge(j) ≤ v < edge(j + 1)`, the last bin also `v == upper`,
/// where `edge(j) = Double(upper) · j / bins` computed in Double. So a value on an inner edge counts
/// in the bin above it, and the maximum in the last bin.
public struct ActivationHistogram: Sendable, Equatable {
    /// The right end of the last bin: the latent's max activation over the scan.
    public var upper: Float
    /// Values per bin, lowest first.
    public var counts: [Int]

    public init(upper: Float, counts: [Int]) {
        self.upper = upper
        self.counts = counts
    }

    /// Bins kept by `probity features stats`.
    public static let defaultBins = 20

    public var bins: Int { counts.count }

    /// Values counted: the latent's firing positions.
    public var total: Int { counts.reduce(0, +) }

    /// The left edge of bin `j` (`edge(bins) == upper`).
    public func edge(_ j: Int) -> Double { Double(upper) * Double(j) / Double(max(bins, 1)) }

    /// The bin of `value`, or nil when it is outside [0, upper] (or not finite).
    public func bin(of value: Float) -> Int? {
        let v = Double(value)
        guard bins > 0, v.isFinite, v >= 0, v <= Double(upper) else { return nil }
        guard upper > 0 else { return 0 }
        // A first guess from the ratio, then corrected against the edges themselves, so the edge
        // convention holds exactly whatever the rounding of the guess.
        var b = min(max(Int(v / Double(upper) * Double(bins)), 0), bins - 1)
        while b > 0 && v < edge(b) { b -= 1 }
        while b < bins - 1 && v >= edge(b + 1) { b += 1 }
        return b
    }

    /// A stored bin count: a whole number from 0 below 10¹⁵, as the labels file's readers take it.
    static func count(_ d: Double) -> Int? {
        guard d.rounded() == d, d >= 0, d < 1e15 else { return nil }
        return Int(d)
    }

    /// `values` counted in `bins` bins on [0, upper]; values outside that range are not counted.
    public static func counting<C: Collection>(_ values: C, upper: Float, bins: Int = defaultBins) -> ActivationHistogram
    where C.Element == Float {
        var h = ActivationHistogram(upper: upper, counts: [Int](repeating: 0, count: max(bins, 1)))
        for v in values {
            if let b = h.bin(of: v) { h.counts[b] += 1 }
        }
        return h
    }
}
