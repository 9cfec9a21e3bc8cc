// `clamp`: set the feature to a value, as Anthropic did to the Golden Gate feature (e.g. `10x`,
// ten times its max activation). Steering math in docs/DESIGN.md.

/// Sets the feature's activation to `value` at every position the trigger allows.
public struct ClampAction: Action {
    public static let name = "clamp"
    public static let summary = "set the feature to a value (absolute, or like '10x' its max activation)"
    public var value: Level

    /// Clamps to `value`.
    public init(value: Level) { self.value = value }

    public init?(arguments: inout some ActionArguments) {
        guard let value = arguments.level("value") else { return nil }
        self.value = value
    }

    public var values: [Level] { [value] }
    public func resolved(_ level: (Level) -> Float) -> ClampAction { ClampAction(value: .absolute(Double(level(value)))) }
    public var description: String { "clamp to \(value.explained)" }
    public func edited(_ f: Float) -> Float? { value.value(maxActivation: nil) }
}

extension Action where Self == ClampAction {
    /// f' = v.
    public static func clamp(_ v: Float) -> ClampAction { ClampAction(value: .absolute(Double(v))) }
}
