// Feature actions (clamp, scale, add, ...): each type owns its edit math, reads its own values
// (from a rule's YAML keys or a `steer` flag, through `ActionArguments`) and says what it is.
// Adding one is one file in Actions/ and one line in `ActionRegistry.standard`.

/// An edit of a feature, named by `name` in rules (`action:`), packs and `steer`'s flags.
///
/// On an SAE latent the action edits the latent f → f' (`edited`), written back as
/// x' = x + W_dec[i]·(f' − f), which keeps the SAE's error term as it was; on a direction it edits
/// the projection p on the unit vector u: x' = x + (p' − p)·u. An action that acts on the vector
/// rather than the activation (`add`, `project_out`) returns nil from `edited` and does its work in
/// `apply(along:to:width:)`, along a direction or a latent's decoder row.
public protocol Action: Sendable, CustomStringConvertible {
    /// The name rules and flags use (`clamp`).
    static var name: String { get }
    /// One line saying what it does, for docs and error hints.
    static var summary: String { get }
    /// Reads the action's own values (`value`, `factor`, ...). For a rule these are keys of its
    /// `intervene` item (the keys every action shares are read by the rule parser); for a flag,
    /// `F=V` gives each key the one value V. Returns nil when the action cannot be built, the
    /// problem recorded in `arguments`.
    init?(arguments: inout some ActionArguments)
    /// Every value it carries, in order: levels as written (an `Nx` one relative), plain numbers
    /// as absolute levels.
    var values: [Level] { get }
    /// The action with each relative level made absolute by `level` (for one feature).
    func resolved(_ level: (Level) -> Float) -> Self
    /// Why the action leaves activations as they are (`scale` by 1), if it does: a lint warning.
    var noOpReason: String? { get }
    /// The edited activation f' for a feature at activation f (an SAE latent, or the projection on
    /// a direction's unit vector); nil when the action edits along the vector instead.
    func edited(_ f: Float) -> Float?
    /// Edits one position's activations `x` (`width` values) along `v`: a direction, or a latent's
    /// decoder row. The default moves the projection p of x on v/‖v‖ to `edited(p)`.
    func apply(along v: [Float], to x: UnsafeMutablePointer<Float>, width: Int)
    /// Whether it needs the direction's unit vector (true unless it only adds the vector as given),
    /// so a zero direction is an error for it.
    var needsUnitVector: Bool { get }
    /// The action with each edit it makes multiplied by `s` (Action+Strength.swift); s = 1 is the
    /// action itself.
    func atStrength(_ s: Double) -> any Action
}

extension Action {
    public func resolved(_ level: (Level) -> Float) -> Self { self }
    public var noOpReason: String? { nil }
    public func edited(_ f: Float) -> Float? { nil }
    public var needsUnitVector: Bool { true }

    public func apply(along v: [Float], to x: UnsafeMutablePointer<Float>, width: Int) {
        moveProjection(of: x, along: v, width: width) { p in Double(edited(Float(p)) ?? Float(p)) }
    }

    /// The name, for an action held as `any Action`.
    public var name: String { Self.name }

    /// The action as reports and `steer` name it, its values as the run uses them: `clamp 12.5`,
    /// `ablate`.
    public var brief: String {
        values.reduce(Self.name) { text, level in
            switch level {
            case .absolute(let v): return text + " \(Float(v))"
            case .relative: return text + " \(level)"
            }
        }
    }
}

/// Where an action reads its own values: the keys of a rule's `intervene` item, or the `=V` of a
/// `steer` flag. A reader records what is wrong (a missing key, a value of the wrong kind) and
/// returns nil, so one bad item still lets the rest be checked.
public protocol ActionArguments {
    /// A plain number under `key`; nil when absent or not a number.
    mutating func number(_ key: String, required: Bool) -> Double?
    /// A level under `key`: a number, or `Nx` for N × the feature's max activation.
    mutating func level(_ key: String, required: Bool) -> Level?
}

extension ActionArguments {
    public mutating func number(_ key: String) -> Double? { number(key, required: true) }
    public mutating func level(_ key: String) -> Level? { level(key, required: true) }
}

/// Moves the projection p = x·u (u = v/‖v‖) of one position to `target(p)`: x += (p' − p)·u.
/// A zero `v` leaves x as it is. Sums run in Double, as the feature readout's do.
public func moveProjection(of x: UnsafeMutablePointer<Float>, along v: [Float], width d: Int,
                           to target: (Double) -> Double) {
    var dot = 0.0, norm2 = 0.0
    for j in 0..<d {
        dot += Double(x[j]) * Double(v[j])
        norm2 += Double(v[j]) * Double(v[j])
    }
    guard norm2 > 0 else { return }
    let norm = norm2.squareRoot()
    let p = dot / norm
    let step = Float((target(p) - p) / norm)
    for j in 0..<d { x[j] += step * v[j] }
}
