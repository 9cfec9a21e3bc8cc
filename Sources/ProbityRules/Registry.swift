// The plugin registry: actions and detectors are protocol types registered by name, and the YAML
// `action:` and `detect.kind` keys resolve through it. Actions live in ProbityFeatures (their edit
// math, values and docs in one file each, registered in `ActionRegistry.standard`), so packs and
// `steer` share them; this registry adds the detectors (docs/rules.md, "Adding an action").

import ProbityFeatures

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
    /// The actions rules may name.
    public private(set) var actions: ActionRegistry
    public private(set) var detectors: [String: any Detector.Type] = [:]

    /// An empty registry.
    public init() { actions = ActionRegistry() }

    /// Adds an action. Registering a name twice is a programming mistake.
    public mutating func register(action: any Action.Type) {
        actions.register(action)
    }

    /// Adds a detector. Registering a kind twice is a programming mistake.
    public mutating func register(detector: any Detector.Type) {
        precondition(detectors[detector.kind] == nil, "detector '\(detector.kind)' registered twice")
        detectors[detector.kind] = detector
    }

    public var actionNames: [String] { actions.names }
    public var detectorKinds: [String] { detectors.keys.sorted() }

    /// The built-in actions (`ActionRegistry.standard`) and detectors.
    public static let standard: PluginRegistry = {
        var registry = PluginRegistry()
        registry.actions = .standard
        registry.register(detector: ThresholdDetector.self)
        return registry
    }()
}
