// What `probity eval --steer` measures, as value types with pinned keys (docs/eval-steer.schema.json):
// on matched pairs, how often the model prefers the label-1 response (for sycophancy: sides with the
// user) without edits and with the rules' interventions at each strength, and the perplexity of
// benign responses as the fluency cost, with every pair's and item's log-likelihoods so any number
// can be recomputed.

import Foundation
import ProbityRules

/// The result of measuring intervention rules on behaviour.
public struct SteerEvalResult: Codable, Sendable, Equatable {
    /// The `schema_version` this build writes.
    public static let schemaVersion = 2

    public var schemaVersion: Int
    public var probityVersion: String
    public var model: AuditReport.Model
    public var packs: [AuditReport.Pack]
    public var ruleFiles: [AuditReport.FileDigest]
    /// The rules with interventions, and what each edits.
    public var rules: [SteeringRule]
    /// The matched pairs' files.
    public var data: [EvalResult.DataFile]
    /// SHA-256 of the lines `SHA256 PATH` of the data files in path order (as `probity eval`'s).
    public var dataSHA256: String
    /// The files whose responses give the perplexity (none: no fluency measured).
    public var fluency: [EvalResult.DataFile]
    /// The same digest over the fluency files; nil without them.
    public var fluencySHA256: String?
    public var chatFormat: String
    public var bootstrapResamples: Int
    public var bootstrapSeed: Int
    /// Matched pairs scored.
    public var pairs: Int
    /// The pairs' concepts.
    public var concepts: [String]
    /// Response tokens over all fluency items.
    public var fluencyTokens: Int
    /// The model as it is: no hooks attached.
    public var baseline: Baseline
    /// One row per strength, in the order asked.
    public var strengths: [StrengthResult]
    public var items: [PairScore]
    public var fluencyItems: [FluencyScore]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case schemaVersion = "schema_version", probityVersion = "probity_version", model, packs, ruleFiles = "rule_files"
        case rules, data, dataSHA256 = "data_sha256", fluency, fluencySHA256 = "fluency_sha256", chatFormat = "chat_format"
        case bootstrapResamples = "bootstrap_resamples", bootstrapSeed = "bootstrap_seed", pairs, concepts
        case fluencyTokens = "fluency_tokens", baseline, strengths, items, fluencyItems = "fluency_items"
    }

    /// A rule with interventions.
    public struct SteeringRule: Codable, Sendable, Equatable {
        public var rule: String
        public var file: String
        /// Each intervention in words: action, feature, positions, trigger.
        public var interventions: [String]
    }

    /// The unedited model's rate and perplexity.
    public struct Baseline: Codable, Sendable, Equatable {
        /// Fraction of pairs whose label-1 response is the more likely one.
        public var rate: Double
        /// How many pairs that is.
        public var preferred: Int
        /// exp(mean NLL) over every fluency response token; nil without fluency data.
        public var perplexity: Double?
    }

    /// The rules at one strength.
    public struct StrengthResult: Codable, Sendable, Equatable {
        public var strength: Double
        public var rate: Double
        public var preferred: Int
        /// rate − baseline rate.
        public var delta: Double
        /// 95% paired percentile-bootstrap interval of `delta` (pairs resampled with replacement).
        public var deltaInterval: EvalResult.Interval
        public var perplexity: Double?
        /// perplexity / baseline perplexity − 1.
        public var perplexityChange: Double?
        /// Positions the interventions edited over the pairs' passes, and over the fluency passes.
        public var positionsEdited: Int
        public var fluencyPositionsEdited: Int

        enum CodingKeys: String, CodingKey, CaseIterable {
            case strength, rate, preferred, delta, deltaInterval = "delta_ci", perplexity
            case perplexityChange = "perplexity_change", positionsEdited = "positions_edited"
            case fluencyPositionsEdited = "fluency_positions_edited"
        }
    }

    /// Teacher-forced log-likelihoods (sums of the response tokens' log-probabilities, nats) of a
    /// pair's two responses.
    public struct LogLikelihoods: Codable, Sendable, Equatable {
        public var positive: Double
        public var negative: Double

        /// Whether the label-1 response is the more likely (ties are not).
        public var prefersPositive: Bool { positive > negative }
    }

    /// One matched pair.
    public struct PairScore: Codable, Sendable, Equatable {
        public var pair: String
        public var concept: String
        /// Ids of the label-1 and the label-0 item.
        public var positive: String
        public var negative: String
        public var positiveTokens: Int
        public var negativeTokens: Int
        public var baseline: LogLikelihoods
        /// One per strength, in the order of `strengths`.
        public var steered: [LogLikelihoods]

        enum CodingKeys: String, CodingKey, CaseIterable {
            case pair, concept, positive, negative, positiveTokens = "positive_tokens", negativeTokens = "negative_tokens"
            case baseline, steered
        }
    }

    /// One fluency item: its response's summed NLL (nats) without edits and at each strength.
    public struct FluencyScore: Codable, Sendable, Equatable {
        public var id: String
        public var tokens: Int
        public var baselineNLL: Double
        public var steeredNLL: [Double]

        enum CodingKeys: String, CodingKey, CaseIterable {
            case id, tokens, baselineNLL = "baseline_nll", steeredNLL = "steered_nll"
        }
    }
}

extension SteerEvalResult {
    /// The JSON text: sorted keys, indented, with a final newline.
    public func json() throws -> Data { try sortedJSON(self) }

    /// A table, one strength a line, after the baseline.
    public func table() -> String {
        func signed(_ x: Double, _ digits: Int = 3) -> String { String(format: "%+.\(digits)f", x) }
        func ppl(_ x: Double?) -> String { x.map { String(format: "%.3f", $0) } ?? "-" }
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        var out = "\(pairs) pairs (\(concepts.joined(separator: ", "))); fluency: "
            + (fluency.isEmpty ? "none" : "\(fluencyItems.count) responses, \(fluencyTokens) tokens")
            + "; rules: \(rules.map(\.rule).joined(separator: ", "))\n"
        out += pad("strength", 10) + pad("rate", 8) + pad("Δ rate [95% CI]", 27) + pad("perplexity", 12)
            + pad("Δ ppl", 9) + "edits (pairs / fluency)\n"
        out += pad("baseline", 10) + pad(String(format: "%.3f", baseline.rate), 8) + pad("", 27)
            + pad(ppl(baseline.perplexity), 12) + "\n"
        for s in strengths {
            let ci = "\(signed(s.delta)) [\(signed(s.deltaInterval.low)), \(signed(s.deltaInterval.high))]"
            out += pad(formatStrength(s.strength), 10) + pad(String(format: "%.3f", s.rate), 8) + pad(ci, 27)
                + pad(ppl(s.perplexity), 12) + pad(s.perplexityChange.map { String(format: "%+.1f%%", $0 * 100) } ?? "-", 9)
                + "\(s.positionsEdited) / \(s.fluencyPositionsEdited)\n"
        }
        return out
    }

    private func formatStrength(_ s: Double) -> String {
        s == s.rounded() && abs(s) < 1e9 ? String(Int(s)) : String(s)
    }
}
