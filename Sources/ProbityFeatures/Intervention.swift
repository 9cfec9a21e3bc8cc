// What the rules engine compiles to: a feature (an SAE latent, a named direction or a probe), an action
// (Action.swift; math in docs/DESIGN.md "Steering math"), the positions it applies to, and its trigger.

import ProbityLM

/// An SAE placed at a hook point under a name (the pack's), so features can refer to it.
public struct SAEBinding: Sendable {
    public let name: String
    public let sae: SparseAutoencoder
    public let point: HookPoint
    /// Feature labels, for `Nx` values (N × max activation) and for reports.
    public let labels: FeatureLabels

    /// Places `sae` at `point` under `name`.
    public init(name: String, sae: SparseAutoencoder, point: HookPoint, labels: FeatureLabels = FeatureLabels()) {
        self.name = name
        self.sae = sae
        self.point = point
        self.labels = labels
    }
}

/// A dense direction in the activations at one hook point (a steering vector).
public struct Direction: Sendable, Equatable {
    public var name: String
    public var point: HookPoint
    public var vector: [Float]

    /// A direction named `name` at `point`.
    public init(name: String, point: HookPoint, vector: [Float]) {
        self.name = name
        self.point = point
        self.vector = vector
    }
}

/// The thing an action edits or a condition reads.
public enum FeatureTarget: Sendable {
    /// Latent `index` of an SAE.
    case latent(SAEBinding, Int)
    /// A named direction.
    case direction(Direction)
    /// A linear probe, read as its logit w·x + b. Read only: no action edits it.
    case probe(Probe)

    /// The hook point the feature lives at.
    public var point: HookPoint {
        switch self {
        case .latent(let b, _): return b.point
        case .direction(let d): return d.point
        case .probe(let p): return p.point
        }
    }

    /// A short name for reports: `pack[123]`, the direction's or the probe's name.
    public var label: String {
        switch self {
        case .latent(let b, let i): return "\(b.name)[\(i)]"
        case .direction(let d): return d.name
        case .probe(let p): return p.name
        }
    }
}

/// Which positions an intervention edits.
public enum PositionFilter: Sendable, Equatable {
    case all
    /// Positions whose token came from the prompt.
    case prompt
    /// Positions whose token was generated.
    case generated
    /// Absolute positions in this range.
    case range(Range<Int>)
    /// The last N positions of the sequence so far: of a step ending at b (`HookActivations.stepEnd`),
    /// those at b − N or later (every decode step's single position, the prompt's last N in prefill).
    case last(Int)

    /// Whether it may admit a position of a prompt of `length` tokens that runs first, before any
    /// generated token (`.last(n)` admits the prompt's last n when it runs as one step).
    public func mayAdmitPrompt(length: Int) -> Bool { firstPromptPosition(length: length) != nil }

    /// The first position of a prompt of `length` tokens, run as one step before any generated
    /// token, that it may admit; nil when it admits none. Positions before it are edited by nothing
    /// this filter governs, so runs that differ only in such edits compute them alike.
    public func firstPromptPosition(length: Int) -> Int? {
        guard length > 0 else { return nil }
        switch self {
        case .all, .prompt: return 0
        case .generated: return nil
        case .range(let r): return !r.isEmpty && r.lowerBound < length ? max(0, r.lowerBound) : nil
        case .last(let n): return n > 0 ? max(0, length - n) : nil
        }
    }

    func admits(position: Int, origin: TokenOrigin, end: Int) -> Bool {
        switch self {
        case .all: return true
        case .prompt: return origin == .prompt
        case .generated: return origin == .generated
        case .range(let r): return r.contains(position)
        case .last(let n): return position >= end - n
        }
    }
}

/// A feature whose activation (latent value, projection x·u on a direction, or a probe's logit) exceeds
/// `threshold`, or reaches it when `inclusive`.
public struct FeatureCondition: Sendable {
    public var target: FeatureTarget
    public var threshold: Float
    /// Whether an activation equal to the threshold holds (the rules' "at or above").
    public var inclusive: Bool

    /// Holds where the target's activation is strictly above `threshold`.
    public init(_ target: FeatureTarget, above threshold: Float) {
        self.target = target
        self.threshold = threshold
        self.inclusive = false
    }

    /// Holds where the target's activation is at or above `threshold`.
    public init(_ target: FeatureTarget, atLeast threshold: Float) {
        self.target = target
        self.threshold = threshold
        self.inclusive = true
    }

    func holds(_ value: Float) -> Bool { inclusive ? value >= threshold : value > threshold }
}

/// Decides from outside the plan whether an intervention may edit a position: the rules runtime
/// opens it at the first position where a rule's detection holds. Asked at the intervention's
/// hook point, after any hooks attached earlier at that point have run.
public protocol InterventionGate: AnyObject, Sendable {
    func isOpen(at position: Int) -> Bool
}

/// When an intervention starts applying.
public enum Trigger: Sendable {
    case always
    /// From the first position where the condition holds, through every later position of the
    /// sequence. A condition at an earlier (or the same) hook point takes effect in the same step;
    /// one at a later point, from the next step on.
    case from(FeatureCondition)
    /// At exactly the positions where the condition holds, read at the condition's hook point
    /// before that point's edits. The condition's point must not come after the edit's.
    case whileActive(FeatureCondition)
    /// At the positions the gate admits.
    case gate(any InterventionGate)

    /// The condition the trigger reads, if any.
    var condition: FeatureCondition? {
        switch self {
        case .from(let c), .whileActive(let c): return c
        case .always, .gate: return nil
        }
    }
}

/// One intervention: what to edit, how, where and when.
public struct Intervention: Sendable {
    public var target: FeatureTarget
    /// The edit, its levels absolute (resolved for this feature).
    public var action: any Action
    public var positions: PositionFilter
    public var trigger: Trigger

    /// Edits `target` with `action` at the positions `positions` admits, once `trigger` allows.
    public init(_ target: FeatureTarget, _ action: some Action, positions: PositionFilter = .all, trigger: Trigger = .always) {
        self.target = target
        self.action = action
        self.positions = positions
        self.trigger = trigger
    }

    public var point: HookPoint { target.point }
}
