// `cap`: limit the feature's activation from above, min(f, value).

/// Replaces the activation f with min(f, value).
public struct CapAction: Action {
    public static let name = "cap"
    public static let summary = "limit the feature to at most a value (absolute, or like '0.5x' its max activation)"
    public var value: Level

    /// Caps at `value`.
    public init(value: Level) { self.value = value }

    public init?(arguments: inout some ActionArguments) {
        guard let value = arguments.level("value") else { return nil }
        self.value = value
    }

    public var values: [Level] { [value] }
    public func resolved(_ level: (Level) -> Float) -> CapAction { CapAction(value: .absolute(Double(level(value)))) }
    public var description: String { "cap at \(value.explained)" }
    public func edited(_ f: Float) -> Float? { value.value(maxActivation: nil).map { min(f, $0) } }
}

extension Action where Self == CapAction {
    /// f' = min(f, v).
    public static func cap(_ v: Float) -> CapAction { CapAction(value: .absolute(Double(v))) }
}
