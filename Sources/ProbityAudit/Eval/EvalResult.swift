// What `probity eval` measures, as value types with pinned keys (docs/eval.schema.json): per rule,
// how well its score separates labelled items of its concepts, and how often it fires on benign
// exchanges, with every item's score so any number can be recomputed.

import Foundation
import ProbityFeatures
import ProbityRules

/// The result of scoring rules on labelled data.
public struct EvalResult: Codable, Sendable, Equatable {
    /// The `schema_version` this build writes.
    public static let schemaVersion = 3

    public var schemaVersion: Int
    public var probityVersion: String
    public var model: AuditReport.Model
    public var packs: [AuditReport.Pack]
    public var ruleFiles: [AuditReport.FileDigest]
    public var data: [DataFile]
    /// SHA-256 of the lines `SHA256 PATH` of the data files in path order: what a rule's recorded
    /// `validity: {data: …}` names.
    public var dataSHA256: String
    /// The chat format responses were rendered in (`auto`: the model's own template).
    public var chatFormat: String
    /// Bootstrap resamples behind each interval.
    public var bootstrapResamples: Int
    public var rules: [RuleResult]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case schemaVersion = "schema_version", probityVersion = "probity_version", model, packs, ruleFiles = "rule_files"
        case data, dataSHA256 = "data_sha256", chatFormat = "chat_format", bootstrapResamples = "bootstrap_resamples", rules
    }

    /// A data file, its SHA-256 and how many items it holds.
    public struct DataFile: Codable, Sendable, Equatable {
        public var path: String
        public var sha256: String
        public var items: Int
    }

    /// A 95% interval.
    public struct Interval: Codable, Sendable, Equatable {
        public var low: Double
        public var high: Double
    }

    /// One rule as a detector.
    public struct RuleResult: Codable, Sendable, Equatable {
        public var rule: String
        public var severity: RuleSeverity
        /// The rule's tags that name concepts of the data: the items it is judged on.
        public var concepts: [String]
        public var positives: Int
        /// Label-0 items of its concepts.
        public var negatives: Int
        /// Items of concept `benign`, negatives for every rule.
        public var benign: Int
        /// Positives against every negative (its concepts' and the benign items); nil without both.
        public var auroc: Double?
        public var aurocInterval: Interval?
        /// Positives against its concepts' own negatives only (the matched contrast).
        public var aurocConcept: Double?
        public var aurocConceptInterval: Interval?
        /// Fraction of positives on which the rule fires at its threshold.
        public var tpr: Double?
        /// Fraction of its concepts' negatives on which it fires.
        public var fpr: Double?
        /// Fraction of benign items on which it fires.
        public var benignFPR: Double?
        public var items: [ItemScore]
        /// Watched packs that record no derivation items (`provenance.items`): whether the data
        /// derived them could not be checked.
        public var leakageUnchecked: [String]
        /// The threshold chosen on calibration data and the rates at it (`--calibrate`), else nil.
        public var calibration: Calibration?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case rule, severity, concepts, positives, negatives, benign, auroc, aurocInterval = "auroc_ci"
            case aurocConcept = "auroc_concept", aurocConceptInterval = "auroc_concept_ci", tpr, fpr
            case benignFPR = "benign_fpr", items, leakageUnchecked = "leakage_unchecked", calibration
        }
    }

    /// Rates at one threshold: positives, its concepts' negatives, benign items that fire.
    public struct Rates: Codable, Sendable, Equatable {
        public var tpr: Double?
        public var fpr: Double?
        public var benignFPR: Double?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case tpr, fpr, benignFPR = "benign_fpr"
        }
    }

    /// A threshold chosen on calibration data (docs/eval.md, "Calibrating a threshold").
    public struct Calibration: Codable, Sendable, Equatable {
        /// The most the calibration negatives (its concepts' and the benign ones) may fire.
        public var targetFPR: Double
        /// The chosen threshold (a float32 value, as the engine compares it).
        public var threshold: Double
        /// The rule's own threshold, as compiled.
        public var shippedThreshold: Double
        /// The calibration files, and their digest as `data_sha256` is computed.
        public var data: [DataFile]
        public var dataSHA256: String
        /// Calibration items the threshold was chosen on.
        public var positives: Int
        public var negatives: Int
        public var benign: Int
        /// The fraction of all calibration negatives (concept and benign) that fire: at most `target_fpr`.
        public var negativesFPR: Double?
        /// Rates at the chosen threshold on the calibration items, and on the test items.
        public var calibration: Rates
        public var test: Rates
        /// Every calibration item, with its score (null: never judged, never fires) and whether it
        /// fires at the chosen threshold.
        public var items: [CalibrationItem]

        enum CodingKeys: String, CodingKey, CaseIterable {
            case targetFPR = "target_fpr", threshold, shippedThreshold = "shipped_threshold", data, dataSHA256 = "data_sha256"
            case positives, negatives, benign, negativesFPR = "negatives_fpr", calibration, test, items
        }
    }

    /// One calibration item's score under a rule, and whether it fires at the chosen threshold.
    public struct CalibrationItem: Codable, Sendable, Equatable {
        public var id: String
        public var label: Int
        public var concept: String
        public var score: Double?
        public var fires: Bool

        enum CodingKeys: String, CodingKey, CaseIterable {
            case id, label, concept, score, fires
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(label, forKey: .label)
            try c.encode(concept, forKey: .concept)
            try c.encode(score, forKey: .score)  // null, not absent, when never judged
            try c.encode(fires, forKey: .fires)
        }
    }

    /// One item's score under a rule: the detection's aggregate over its scope, and whether it fires.
    public struct ItemScore: Codable, Sendable, Equatable {
        public var id: String
        public var label: Int
        public var concept: String
        public var score: Double
        public var fires: Bool
    }
}

extension EvalResult {
    /// The JSON text: sorted keys, indented, with a final newline.
    public func json() throws -> Data { try sortedJSON(self) }

    /// Per rule with an AUROC, the `validity:` line its file should record (docs/eval.md). With a
    /// calibration, the line a rule records once its threshold is set to the calibrated one: the
    /// test rates at that threshold, the threshold, and the calibration data's digest.
    public func validityLines() -> [(rule: String, line: String)] {
        rules.compactMap { r in
            guard let auroc = r.auroc else { return nil }
            let rates = r.calibration?.test ?? Rates(tpr: r.tpr, fpr: r.fpr, benignFPR: r.benignFPR)
            guard let tpr = rates.tpr, let fpr = rates.fpr, let benign = rates.benignFPR else { return nil }
            func f(_ x: Double) -> String { String(format: "%.3f", x) }
            var line = "validity: {auroc: \(f(auroc)), tpr: \(f(tpr)), fpr: \(f(fpr)), benign_fpr: \(f(benign)), "
                + "data: \(dataSHA256), n: \(r.positives + r.negatives + r.benign)"
            if let c = r.calibration {
                line += ", threshold: \(Self.threshold(c.threshold)), calibration: \(c.dataSHA256)"
            }
            return (r.rule, line + "}")
        }
    }

    /// A threshold as the shortest text that reads back as the same float32.
    public static func threshold(_ value: Double) -> String { Float(value).description }

    /// The digest of data files, each given as (path, sha256).
    public static func dataDigest(_ files: [(path: String, sha256: String)]) -> String {
        SHA256.hex(Array(files.sorted { $0.path < $1.path }.map { "\($0.sha256) \($0.path)\n" }.joined().utf8))
    }

    /// A table, one rule a line.
    public func table() -> String {
        func f(_ x: Double?) -> String { x.map { String(format: "%.2f", $0) } ?? "  - " }
        func ci(_ a: Double?, _ i: Interval?) -> String {
            guard let a, let i else { return "-" }
            return String(format: "%.2f [%.2f, %.2f]", a, i.low, i.high)
        }
        let width = max(4, rules.map(\.rule.count).max() ?? 0)
        let conceptWidth = max(8, rules.map { $0.concepts.joined(separator: ",").count }.max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func left(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        var out = pad("rule", width) + "  " + pad("severity", 8) + "  " + pad("concepts", conceptWidth)
            + left("n+", 5) + left("n-", 5) + left("benign", 7) + "  " + pad("AUROC [95% CI]", 20) + "  "
            + pad("vs concept's own negatives", 26) + left("TPR", 6) + left("FPR", 6) + left("bFPR", 6) + "\n"
        for r in rules {
            out += pad(r.rule, width) + "  " + pad(r.severity.rawValue, 8) + "  "
                + pad(r.concepts.isEmpty ? "-" : r.concepts.joined(separator: ","), conceptWidth)
                + left("\(r.positives)", 5) + left("\(r.negatives)", 5) + left("\(r.benign)", 7) + "  "
                + pad(ci(r.auroc, r.aurocInterval), 20) + "  " + pad(ci(r.aurocConcept, r.aurocConceptInterval), 26)
                + left(f(r.tpr), 6) + left(f(r.fpr), 6) + left(f(r.benignFPR), 6) + "\n"
        }
        let calibrated = rules.filter { $0.calibration != nil }
        guard let first = calibrated.first?.calibration else { return out }
        out += "\ncalibrated on \(first.data.map(\.path).joined(separator: ", ")) for FPR ≤ \(first.targetFPR) "
            + "(rates on the test data above):\n"
        out += pad("rule", width) + left("shipped", 10) + left("TPR", 6) + left("FPR", 6) + left("bFPR", 6)
            + left("calibrated", 12) + left("TPR", 6) + left("FPR", 6) + left("bFPR", 6)
            + "   calibration n+/n-/benign, FPR there\n"
        for r in calibrated {
            guard let c = r.calibration else { continue }
            out += pad(r.rule, width) + left(String(format: "%.4g", c.shippedThreshold), 10)
                + left(f(r.tpr), 6) + left(f(r.fpr), 6) + left(f(r.benignFPR), 6)
                + left(Self.threshold(c.threshold), 12) + left(f(c.test.tpr), 6) + left(f(c.test.fpr), 6) + left(f(c.test.benignFPR), 6)
                + "   \(c.positives)/\(c.negatives)/\(c.benign), " + f(c.negativesFPR) + "\n"
        }
        return out
    }
}
