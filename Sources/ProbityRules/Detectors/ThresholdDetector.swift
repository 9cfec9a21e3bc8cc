// `threshold`: the standard detector. Per token, the watched features are compared with a level;
// over the scope, `max`, `mean` or `count` decides whether the rule fires.

import ProbityFeatures

/// How token activations in the scope become one decision.
public enum Aggregate: String, Sendable, CaseIterable {
    /// Fires when the largest activation in the scope reaches the threshold.
    case max
    /// Fires when the mean activation over the scope reaches the threshold.
    case mean
    /// Fires when at least `min_tokens` tokens in the scope reach the threshold.
    case count
}

/// Fires when the watched features reach a threshold over a scope of tokens.
public struct ThresholdDetector: Detector {
    public static let kind = "threshold"
    public static let summary = "compare the features with a threshold over a scope of tokens (max, mean or count)"

    public var threshold: Threshold
    public var scope: Scope
    /// For `count`: how many tokens must reach the threshold. For `max` and `mean`: how many tokens
    /// the scope must hold before the rule is judged at all.
    public var minTokens: Int
    public var aggregate: Aggregate

    public init(threshold: Threshold, scope: Scope, minTokens: Int, aggregate: Aggregate) {
        self.threshold = threshold
        self.scope = scope
        self.minTokens = minTokens
        self.aggregate = aggregate
    }

    public init?(fields: inout Fields, diagnostics: inout Diagnostics) {
        let context = fields.context
        let threshold = fields.required("threshold", into: &diagnostics)
            .flatMap { Threshold.parse($0, what: "\(context): 'threshold'", into: &diagnostics) }
        let scope = fields.optional("scope").map { Self.parseScope($0, context: context, into: &diagnostics) } ?? .response
        var minTokens: Int? = 1
        if let node = fields.optional("min_tokens") {
            minTokens = nil
            do {
                let n = try node.int()
                if n >= 1 { minTokens = n } else {
                    diagnostics.error("\(context): 'min_tokens' must be at least 1, found \(n)", at: node.location)
                }
            } catch {
                diagnostics.error("\(context): 'min_tokens': \(error.message)", at: node.location)
            }
        }
        let aggregate = fields.choice("aggregate", among: Aggregate.allCases.map(\.rawValue), into: &diagnostics)
        let aggregateGiven = fields.has("aggregate")
        guard let threshold, let scope, let minTokens, aggregate != nil || !aggregateGiven else { return nil }
        self.init(threshold: threshold, scope: scope, minTokens: minTokens,
                  aggregate: aggregate.flatMap(Aggregate.init(rawValue:)) ?? .max)
    }

    /// `prompt`, `response`, `all`, or `{last: N}`.
    static func parseScope(_ node: YAMLNode, context: String, into diagnostics: inout Diagnostics) -> Scope? {
        let names = ["prompt", "response", "all"]
        if let text = try? node.string() {
            switch text {
            case "prompt": return .prompt
            case "response": return .response
            case "all": return .all
            default:
                diagnostics.error("\(context): 'scope' must be prompt, response, all or {last: N}; found '\(text)'",
                                  at: node.location, hint: closest(to: text, in: names + ["last"]).map { "did you mean '\($0)'?" })
                return nil
            }
        }
        guard case .mapping = node.content else {
            diagnostics.error("\(context): 'scope' must be prompt, response, all or {last: N}; found \(node.found)", at: node.location)
            return nil
        }
        guard var fields = Fields(node, context: "\(context): scope", into: &diagnostics) else { return nil }
        let last = fields.read("last", required: true, into: &diagnostics) { n throws(RulesError) in try n.int() }
        fields.finish(into: &diagnostics)
        guard let last else { return nil }
        guard last >= 1 else {
            diagnostics.error("\(context): scope 'last' must be at least 1, found \(last)", at: node["last"]?.location ?? node.location)
            return nil
        }
        return .last(last)
    }

    public var neverFiresReason: String? {
        if case .last(let n) = scope, minTokens > n {
            return "min_tokens \(minTokens) is more than the \(n) tokens in its scope"
        }
        return nil
    }

    public var thresholds: [Threshold] { [threshold] }

    public var description: String {
        switch aggregate {
        case .max:
            return "fires when the largest activation over \(scope) reaches \(threshold.explained)"
                + (minTokens > 1 ? ", once the scope holds at least \(minTokens) tokens" : "")
        case .mean:
            return "fires when the mean activation over \(scope) reaches \(threshold.explained)"
                + (minTokens > 1 ? ", once the scope holds at least \(minTokens) tokens" : "")
        case .count:
            return "fires when at least \(minTokens) token\(minTokens == 1 ? "" : "s") of \(scope) reach \(threshold.explained)"
        }
    }
}
