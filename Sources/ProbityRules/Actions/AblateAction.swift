// `ablate`: set the feature to zero (the SAE's reconstruction error is kept, docs/DESIGN.md).

import ProbityFeatures

/// Sets the feature's activation to 0.
public struct AblateAction: Action {
    public static let name = "ablate"
    public static let summary = "set the feature to 0"

    public init?(fields: inout Fields, diagnostics: inout Diagnostics) {}

    public var description: String { "ablate (set to 0)" }
    public func featureAction(level: (Threshold) -> Float) -> FeatureAction? { .ablate }
}
