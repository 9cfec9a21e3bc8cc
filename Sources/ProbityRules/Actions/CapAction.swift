// `cap`: limit the feature's activation from above, min(f, value).

import ProbityFeatures

/// Replaces the activation f with min(f, value).
public struct CapAction: Action {
    public static let name = "cap"
    public static let summary = "limit the feature to at most a value (absolute, or like '0.5x' its max activation)"
    public var value: Threshold

    public init?(fields: inout Fields, diagnostics: inout Diagnostics) {
        guard let node = fields.required("value", into: &diagnostics),
              let value = Threshold.parse(node, what: "\(fields.context): 'value'", into: &diagnostics) else { return nil }
        self.value = value
    }

    public var relativeLevels: [Threshold] { [value] }
    public var description: String { "cap at \(value.explained)" }
    public func featureAction(level: (Threshold) -> Float) -> FeatureAction? { .cap(level(value)) }
}
