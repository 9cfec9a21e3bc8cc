// `scale`: multiply the feature's activation; > 1 amplifies, < 1 attenuates, 0 ablates.

import ProbityFeatures

/// Multiplies the feature's activation by `factor`.
public struct ScaleAction: Action {
    public static let name = "scale"
    public static let summary = "multiply the feature by a factor (> 1 amplifies, < 1 attenuates)"
    public var factor: Double

    public init?(fields: inout Fields, diagnostics: inout Diagnostics) {
        guard let factor = fields.read("factor", required: true, into: &diagnostics, { n throws(RulesError) in try n.number() })
        else { return nil }
        self.factor = factor
    }

    public var noOpReason: String? { factor == 1 ? "scaling by 1 changes nothing" : nil }
    public var description: String { "scale by \(formatNumber(factor))" }
    public func featureAction(level: (Threshold) -> Float) -> FeatureAction? { .scale(Float(factor)) }
}
