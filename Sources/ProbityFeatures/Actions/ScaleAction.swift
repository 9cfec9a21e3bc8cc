// `scale`: multiply the feature's activation; > 1 amplifies, < 1 attenuates, 0 ablates.

/// Multiplies the feature's activation by `factor`.
public struct ScaleAction: Action {
    public static let name = "scale"
    public static let summary = "multiply the feature by a factor (> 1 amplifies, < 1 attenuates)"
    public var factor: Double

    /// Scales by `factor`.
    public init(factor: Double) { self.factor = factor }

    public init?(arguments: inout some ActionArguments) {
        guard let factor = arguments.number("factor") else { return nil }
        self.factor = factor
    }

    public var values: [Level] { [.absolute(factor)] }
    public var noOpReason: String? { factor == 1 ? "scaling by 1 changes nothing" : nil }
    public var description: String { "scale by \(formatNumber(factor))" }
    public func edited(_ f: Float) -> Float? { Float(factor) * f }
}

extension Action where Self == ScaleAction {
    /// f' = a·f.
    public static func scale(_ a: Float) -> ScaleAction { ScaleAction(factor: Double(a)) }
}
