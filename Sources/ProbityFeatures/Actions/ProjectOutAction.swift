// `project_out`: remove the activations' component along the feature's direction.

/// Replaces x with x − (x·u)u for the feature's unit direction u (a latent's: its decoder row's).
public struct ProjectOutAction: Action {
    public static let name = "project_out"
    public static let summary = "remove the component along the feature's direction"

    /// Projects out.
    public init() {}
    public init?(arguments: inout some ActionArguments) {}

    public var values: [Level] { [] }
    public var description: String { "project out the direction" }

    public func apply(along v: [Float], to x: UnsafeMutablePointer<Float>, width d: Int) {
        moveProjection(of: x, along: v, width: d) { _ in 0 }
    }
}

extension Action where Self == ProjectOutAction {
    /// x' = x − (x·u)·u.
    public static var projectOut: ProjectOutAction { ProjectOutAction() }
}
