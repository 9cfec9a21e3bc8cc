// `project_out`: remove the activations' component along the feature's direction.

import ProbityFeatures

/// Replaces x with x − (x·d)d for the feature's unit direction d.
public struct ProjectOutAction: Action {
    public static let name = "project_out"
    public static let summary = "remove the component along the feature's direction"

    public init?(fields: inout Fields, diagnostics: inout Diagnostics) {}

    public var description: String { "project out the direction" }
    public func featureAction(level: (Threshold) -> Float) -> FeatureAction? { .projectOut }
}
