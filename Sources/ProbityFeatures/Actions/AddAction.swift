// `add`: add alpha times the feature's direction to the activations (a steering vector, as in
// contrastive activation addition; for an SAE latent the direction is its decoder row).

/// Adds `alpha` × the feature's direction, as given (not normalized).
public struct AddAction: Action {
    public static let name = "add"
    public static let summary = "add alpha times the feature's direction (a steering vector)"
    public var alpha: Double

    /// Adds `alpha` × the direction.
    public init(alpha: Double) { self.alpha = alpha }

    public init?(arguments: inout some ActionArguments) {
        guard let alpha = arguments.number("alpha") else { return nil }
        self.alpha = alpha
    }

    public var values: [Level] { [.absolute(alpha)] }
    public var noOpReason: String? { alpha == 0 ? "adding 0 times a direction changes nothing" : nil }
    public var description: String { "add \(formatNumber(alpha)) × the direction" }
    public var needsUnitVector: Bool { false }

    /// α → s·α: exactly the edit x' − x = α·v times s.
    public func atStrength(_ s: Double) -> any Action { AddAction(alpha: alpha * s) }

    /// x' = x + α·v.
    public func apply(along v: [Float], to x: UnsafeMutablePointer<Float>, width d: Int) {
        let a = Float(alpha)
        for j in 0..<d { x[j] += a * v[j] }
    }
}

extension Action where Self == AddAction {
    /// x' = x + α·d (a direction as given, or a latent's decoder row W_dec[i]).
    public static func add(_ alpha: Float) -> AddAction { AddAction(alpha: Double(alpha)) }
}
