// `clamp`: set the feature to a value, as Anthropic did to the Golden Gate feature (e.g. `10x`,
// ten times its max activation). Steering math in docs/DESIGN.md.

import ProbityFeatures

/// Sets the feature's activation to `value` at every position the trigger allows.
public struct ClampAction: Action {
    public static let name = "clamp"
    public static let summary = "set the feature to a value (absolute, or like '10x' its max activation)"
    public var value: Threshold

    public init?(fields: inout Fields, diagnostics: inout Diagnostics) {
        guard let node = fields.required("value", into: &diagnostics),
              let value = Threshold.parse(node, what: "\(fields.context): 'value'", into: &diagnostics) else { return nil }
        self.value = value
    }

    public var relativeLevels: [Threshold] { [value] }
    public var description: String { "clamp to \(value.explained)" }
    public func featureAction(level: (Threshold) -> Float) -> FeatureAction? { .clamp(level(value)) }
}
