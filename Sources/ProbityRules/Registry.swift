// The plugin registry: actions and detectors are protocol types registered by name, and the YAML
// `action:` and `detect.kind` keys resolve through it. Adding an action is one file in Actions/
// and one `register` line in `PluginRegistry.standard` (docs/rules.md, "Adding an action").

import ProbityFeatures

/// An intervention on features, named in YAML by `action:`.
public protocol Action: Sendable, CustomStringConvertible {
    /// The YAML name (`clamp`).
    static var name: String { get }
    /// One line saying what it does, for docs and error hints.
    static var summary: String { get }
    /// Reads the action's own keys (`value`, `factor`, ...). The keys every action shares
    /// (`action`, `feature`, `trigger`, `positions`) are read by the rule parser. Records problems
    /// in `diagnostics` and returns nil when the action cannot be built.
    init?(fields: inout Fields, diagnostics: inout Diagnostics)
    /// Why the action leaves activations as they are (`scale` by 1), if it does: a lint warning.
    var noOpReason: String? { get }
    /// Levels given relative to the feature's max activation, which the pack must record.
    var relativeLevels: [Threshold] { get }
    /// The edit a run performs, with `level` turning a value (absolute or `Nx`) into the target
    /// feature's activation level; nil when the action has no feature edit (compiling it is then an
    /// error naming the action).
    func featureAction(level: (Threshold) -> Float) -> FeatureAction?
}

extension Action {
    public var noOpReason: String? { nil }
    public var relativeLevels: [Threshold] { [] }
    public func featureAction(level: (Threshold) -> Float) -> FeatureAction? { nil }
}

/// A detection condition, named in YAML by `detect.kind` (default `threshold`).
public protocol Detector: Sendable, CustomStringConvertible {
    static var kind: String { get }
    static var summary: String { get }
    /// Reads the detector's keys of the `detect` mapping (`kind` is read by the rule parser).
    init?(fields: inout Fields, diagnostics: inout Diagnostics)
    /// Why the detector can never fire, whatever the activations, if so: a lint warning.
    var neverFiresReason: String? { get }
    /// Every threshold the detector compares against (packs must record max activations for
    /// relative ones).
    var thresholds: [Threshold] { get }
}

/// Actions and detectors by name.
public struct PluginRegistry: Sendable {
    public private(set) var actions: [String: any Action.Type] = [:]
    public private(set) var detectors: [String: any Detector.Type] = [:]

    public init() {}

    /// Adds an action. Registering a name twice is a programming mistake.
    public mutating func register(action: any Action.Type) {
        precondition(actions[action.name] == nil, "action '\(action.name)' registered twice")
        actions[action.name] = action
    }

    /// Adds a detector. Registering a kind twice is a programming mistake.
    public mutating func register(detector: any Detector.Type) {
        precondition(detectors[detector.kind] == nil, "detector '\(detector.kind)' registered twice")
        detectors[detector.kind] = detector
    }

    public var actionNames: [String] { actions.keys.sorted() }
    public var detectorKinds: [String] { detectors.keys.sorted() }

    /// The built-in actions and detectors.
    public static let standard: PluginRegistry = {
        var registry = PluginRegistry()
        registry.register(action: ClampAction.self)
        registry.register(action: ScaleAction.self)
        registry.register(action: AblateAction.self)
        registry.register(action: CapAction.self)
        registry.register(action: AddAction.self)
        registry.register(action: ProjectOutAction.self)
        registry.register(detector: ThresholdDetector.self)
        return registry
    }()
}
