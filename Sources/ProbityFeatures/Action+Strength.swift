// Actions at a strength, for dose-response measurements (`probity eval --steer`, docs/eval.md
// "Steering, measured"): strength s multiplies the edit an action makes at each position,
// x' = x + s·(A(x) − x), so s = 0 leaves every activation as it was, s = 1 is the action as written.

extension Action {
    /// The action with each edit multiplied by `s`: x' = x + s·(A(x) − x) at every position it
    /// edits. `add` scales its α (AddAction); an action that sets a feature's value (clamp, scale,
    /// ablate, cap) moves it s times as far, f' = f + s·(A(f) − f); one that edits the vector
    /// (project_out) moves x s times as far along its edit. s = 1 returns the action itself.
    public func atStrength(_ s: Double) -> any Action {
        s == 1 ? self : ActionAtStrength(base: self, strength: s)
    }
}

/// Another action with each of its edits multiplied by a strength. Built by `Action.atStrength`,
/// never by name: it is not in the registry.
public struct ActionAtStrength: Action {
    public static let name = "at_strength"
    public static let summary = "an action with each of its edits multiplied by a strength"
    public let base: any Action
    public let strength: Double

    /// `base`, each edit times `strength`.
    public init(base: any Action, strength: Double) {
        self.base = base
        self.strength = strength
    }

    /// Not made from a rule's keys or a flag: only `atStrength` builds one.
    public init?(arguments: inout some ActionArguments) { return nil }

    /// The base action's values, then the strength (so the plan checks it is finite).
    public var values: [Level] { base.values + [.absolute(strength)] }
    public func resolved(_ level: (Level) -> Float) -> ActionAtStrength {
        ActionAtStrength(base: base.resolved(level), strength: strength)
    }
    public var noOpReason: String? { strength == 0 ? "strength 0 leaves the activations as they are" : base.noOpReason }
    public var description: String { "\(base.description), at strength \(formatNumber(strength))" }
    public var needsUnitVector: Bool { base.needsUnitVector }

    /// f' = f + s·(A(f) − f); nil where the base edits along the vector.
    public func edited(_ f: Float) -> Float? {
        base.edited(f).map { f + Float(strength) * ($0 - f) }
    }

    public func apply(along v: [Float], to x: UnsafeMutablePointer<Float>, width d: Int) {
        if base.edited(0) != nil {
            // A value edit on the projection p: p' = p + s·(A(p) − p), in Double.
            moveProjection(of: x, along: v, width: d) { p in
                p + strength * (Double(base.edited(Float(p)) ?? Float(p)) - p)
            }
            return
        }
        // A vector edit: apply it to a copy, then move x by s times the difference.
        var edited = Array(UnsafeBufferPointer(start: x, count: d))
        edited.withUnsafeMutableBufferPointer { buffer in
            guard let p = buffer.baseAddress else { return }
            base.apply(along: v, to: p, width: d)
        }
        let s = Float(strength)
        for j in 0..<d { x[j] += s * (edited[j] - x[j]) }
    }
}
