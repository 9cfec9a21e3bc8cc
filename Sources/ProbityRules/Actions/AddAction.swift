// `add`: add alpha times the feature's direction to the activations (a steering vector, as in
// contrastive activation addition; for an SAE latent the direction is its decoder row).

import ProbityFeatures

/// Adds `alpha` × the feature's unit direction.
public struct AddAction: Action {
    public static let name = "add"
    public static let summary = "add alpha times the feature's direction (a steering vector)"
    public var alpha: Double

    public init?(fields: inout Fields, diagnostics: inout Diagnostics) {
        guard let alpha = fields.read("alpha", required: true, into: &diagnostics, { n throws(RulesError) in try n.number() })
        else { return nil }
        self.alpha = alpha
    }

    public var noOpReason: String? { alpha == 0 ? "adding 0 times a direction changes nothing" : nil }
    public var description: String { "add \(formatNumber(alpha)) × the direction" }
    public func featureAction(level: (Threshold) -> Float) -> FeatureAction? { .add(Float(alpha)) }
}
