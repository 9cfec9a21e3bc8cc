// `ablate`: set the feature to zero (the SAE's reconstruction error is kept, docs/DESIGN.md).

/// Sets the feature's activation to 0.
public struct AblateAction: Action {
    public static let name = "ablate"
    public static let summary = "set the feature to 0"

    /// Ablates.
    public init() {}
    public init?(arguments: inout some ActionArguments) {}

    public var values: [Level] { [] }
    public var description: String { "ablate (set to 0)" }
    public func edited(_ f: Float) -> Float? { 0 }
}

extension Action where Self == AblateAction {
    /// f' = 0.
    public static var ablate: AblateAction { AblateAction() }
}
