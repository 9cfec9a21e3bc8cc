// The `probity` extension object of the serving API (docs/serve.md): what a request asks of the
// rules and steering, and what the response reports back, in the audit report's case schema
// (findings are `AuditReport.Firing`s, features `AuditReport.PositionFeatures`). Keys are pinned.

import ProbityAudit
import ProbityRules

/// A request's `"probity"` object: which of the server's rules apply, per-request steering, which
/// features to report per token, and the severity that fails the request's verdict.
public struct ProbityRequestOptions: Codable, Sendable, Equatable {
    /// Rule ids or tags; nil keeps every rule the server loaded, [] none.
    public var rules: [String]?
    public var steer: [SteerEdit]?
    public var features: FeatureRequest?
    /// Findings at or above this severity make `passed` false (default: the server's `--fail-on`).
    public var failOn: RuleSeverity?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case rules, steer, features, failOn = "fail_on"
    }

    public init(rules: [String]? = nil, steer: [SteerEdit]? = nil, features: FeatureRequest? = nil, failOn: RuleSeverity? = nil) {
        self.rules = rules
        self.steer = steer
        self.features = features
        self.failOn = failOn
    }
}

/// One steering edit of a request: an action of the registry on `pack/feature` (a latent index,
/// label or direction name of one of the server's packs), with its value where the action takes one
/// (`clamp`/`cap` a level, which may be `"2x"` of the feature's max activation; `scale` a factor;
/// `add` a coefficient).
public struct SteerEdit: Codable, Sendable, Equatable {
    public var action: String
    public var feature: String
    public var value: SteerValue?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case action, feature, value
    }

    public init(action: String, feature: String, value: SteerValue? = nil) {
        self.action = action
        self.feature = feature
        self.value = value
    }
}

/// A steering value as JSON gives it: a number, or a string such as `"2x"` (times the max activation).
public enum SteerValue: Codable, Sendable, Equatable, CustomStringConvertible {
    case number(Double)
    case text(String)

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let d = try? c.decode(Double.self) { self = .number(d); return }
        if let s = try? c.decode(String.self) { self = .text(s); return }
        throw DecodingError.typeMismatch(SteerValue.self, .init(codingPath: decoder.codingPath,
                                                                debugDescription: "expected a number or a string such as \"2x\""))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .number(let d): try c.encode(d)
        case .text(let s): try c.encode(s)
        }
    }

    public var description: String {
        switch self {
        case .number(let d): return d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
        case .text(let s): return s
        }
    }
}

/// Which features to report per token: the top `top_k` latents of each SAE pack named (default:
/// every SAE pack the server loaded).
public struct FeatureRequest: Codable, Sendable, Equatable {
    public var topK: Int
    public var packs: [String]?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case topK = "top_k", packs
    }

    public init(topK: Int, packs: [String]? = nil) {
        self.topK = topK
        self.packs = packs
    }
}

/// A response's `"probity"` object.
public struct ProbityResult: Codable, Sendable, Equatable {
    /// Rules that fired on this generation (prompt and response), as an audit report's `fired`.
    public var findings: [AuditReport.Firing]
    /// Every edit that changed at least one position, the rules' and the request's own.
    public var interventions: [AppliedIntervention]
    /// Per position, the top latents of the requested SAE packs; absent unless asked.
    public var features: [AuditReport.PositionFeatures]?
    /// False when a finding is at or above `fail_on`.
    public var passed: Bool
    public var failOn: RuleSeverity
    /// The token at each position (prompt then generated), which `findings` and `features` index;
    /// absent unless features were asked.
    public var pieces: [String]?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case findings, interventions, features, passed, failOn = "fail_on", pieces
    }
}

/// An edit and how many positions it changed: `source` is a rule id, or `request` for the request's
/// own `steer` edits.
public struct AppliedIntervention: Codable, Sendable, Equatable {
    public var source: String
    public var feature: String
    public var action: String
    public var positionsEdited: Int

    enum CodingKeys: String, CodingKey, CaseIterable {
        case source, feature, action, positionsEdited = "positions_edited"
    }
}
