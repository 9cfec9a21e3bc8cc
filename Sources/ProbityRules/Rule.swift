// The rule language's data model (docs/rules.md): a file declares the packs it uses and its rules;
// a rule watches features, detects when they are active, and may intervene or stop generation.
// Every part keeps the location it was read from, so later checks point at the right line.

import ProbityFeatures
import ProbityLM

/// A rules file after parsing.
public struct RuleFile: Sendable {
    /// The path as given (diagnostics use it).
    public var path: String
    public var schemaVersion: Int
    public var packs: [PackDeclaration]
    public var rules: [Rule]
}

/// A pack a rules file uses: a name its rules refer to, and a directory relative to the file.
public struct PackDeclaration: Sendable, Equatable {
    public var name: String
    /// The path as written in the file.
    public var path: String
    /// `path` resolved against the rules file's directory.
    public var resolvedPath: String
    public var location: FileLocation
    /// Where the `path` value is, for "no such pack" errors.
    public var pathLocation: FileLocation
}

/// How bad it is when a rule fires. Ordered, so `--fail-on high` can compare.
public enum RuleSeverity: String, Sendable, CaseIterable, Comparable, Codable, CodingKeyRepresentable {
    case info, low, medium, high, critical

    private var rank: Int {
        switch self {
        case .info: return 0
        case .low: return 1
        case .medium: return 2
        case .high: return 3
        case .critical: return 4
        }
    }

    public static func < (a: RuleSeverity, b: RuleSeverity) -> Bool { a.rank < b.rank }
}

/// One rule.
public struct Rule: Sendable {
    public var id: String
    public var description: String
    public var severity: RuleSeverity
    public var tags: [String]
    public var watch: Watch
    public var detector: any Detector
    /// Actions to run on the forward pass; empty when the rule only observes.
    public var interventions: [RuleIntervention]
    /// End generation when the rule fires.
    public var stop: Bool
    /// Tokens whose logits an audit follows when it measures this rule's interventions
    /// (`effects: {tokens: [...]}`); each must be one token of the model's vocabulary.
    public var effectTokens: [EffectToken]
    /// What `probity eval` measured for it, when recorded (`validity:`; docs/eval.md).
    public var validity: RuleValidity?
    public var tests: [RuleTest]
    /// Where the rule's mapping starts.
    public var location: FileLocation
    /// Where its `id` value is (duplicate id errors point here).
    public var idLocation: FileLocation
}

/// A token named in a rule's `effects`, as written, with where it is written.
public struct EffectToken: Sendable, Equatable {
    public var text: String
    public var location: FileLocation
}

/// What a rule watches: features combined with `any` (one suffices) or `all` (each must hold).
public struct Watch: Sendable, Equatable {
    public enum Combine: String, Sendable { case any, all }
    public var combine: Combine
    public var features: [FeatureReference]
}

/// A feature named in a rule: an SAE latent by index or label, a named direction, or a probe, in a pack.
public struct FeatureReference: Sendable, Equatable, CustomStringConvertible {
    public enum Selector: Sendable, Equatable {
        case latent(Int)
        case label(String)
        case direction(String)
        case probe(String)

        /// The YAML key that names it: `latent`, `label`, `direction` or `probe`.
        public var key: String {
            switch self {
            case .latent: return "latent"
            case .label: return "label"
            case .direction: return "direction"
            case .probe: return "probe"
            }
        }
    }

    public var pack: String
    public var selector: Selector
    /// The hook point when the rule overrides the pack's own.
    public var hook: HookPoint?
    public var location: FileLocation
    /// Where the index, label or direction name is written.
    public var selectorLocation: FileLocation
    public var hookLocation: FileLocation?

    public var description: String {
        switch selector {
        case .latent(let i): return "latent \(i) of pack '\(pack)'"
        case .label(let l): return "the latent labelled '\(l)' in pack '\(pack)'"
        case .direction(let d): return "direction '\(d)' of pack '\(pack)'"
        case .probe(let p): return "probe '\(p)' of pack '\(pack)'"
        }
    }
}

/// A detection or action level: absolute, or a multiple of the feature's max activation over
/// the pack's reference corpus (written `0.3x`).
public typealias Threshold = Level

extension Level {
    /// Parses `2.5` or `"0.3x"` (a number, or a string that `Level.parse` reads as relative);
    /// records what was expected otherwise.
    static func parse(_ node: YAMLNode, what: String, into diagnostics: inout Diagnostics) -> Threshold? {
        if let v = try? node.number() { return .absolute(v) }
        if let text = try? node.string(), text.hasSuffix("x"), let level = Level.parse(text) { return level }
        diagnostics.error("\(what): expected a number or a multiple of the feature's max activation like '0.3x', found \(node.found)",
                          at: node.location)
        return nil
    }
}

/// Which tokens a detector looks at.
public enum Scope: Sendable, Equatable, CustomStringConvertible {
    case prompt, response, all
    /// The last N tokens, wherever they are.
    case last(Int)

    public var description: String {
        switch self {
        case .prompt: return "the prompt"
        case .response: return "the response"
        case .all: return "prompt and response"
        case .last(let n): return "the last \(n) token\(n == 1 ? "" : "s")"
        }
    }
}

/// When an action runs.
public enum RuleTrigger: Sendable, Equatable {
    /// On every position, from the first token.
    case always
    /// From the first position where the rule's detection holds, on.
    case afterFire
    /// At positions where another feature is at or above a threshold.
    case whileActive(FeatureReference, Threshold)
}

/// An action from the registry applied to features, with its trigger.
public struct RuleIntervention: Sendable {
    public var action: any Action
    /// The features it acts on: its own `feature`, else the rule's watched features.
    public var target: FeatureReference?
    public var trigger: RuleTrigger
    /// Which positions it may edit.
    public var positions: Scope
    public var location: FileLocation
}

/// An example a rule must get right, run by `probity rules test`.
public struct RuleTest: Sendable, Equatable {
    public enum Input: Sendable, Equatable {
        case prompt(String)
        case messages([ChatMessage])
    }

    public enum Expectation: String, Sendable {
        case fires, silent
    }

    public var name: String?
    public var input: Input
    public var expect: Expectation
    /// Text the steered output must contain / must not contain.
    public var outputContains: [String]
    public var outputExcludes: [String]
    public var maxTokens: Int?
    public var location: FileLocation
}
