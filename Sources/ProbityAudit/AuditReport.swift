// The audit report as value types (docs/audits.md): the JSON contract of docs/report.schema.json,
// each key pinned by a CodingKeys case, so a renamed key is a compile error or a decoding error,
// never a silently wrong number. Building, summarising, merging and writing live in extensions.

import Foundation
import ProbityRules
import ProbityTensor

/// What `probity audit` writes: where the run came from, its settings, per case what each run
/// generated, which rules fired where, what the interventions changed, and the verdict.
public struct AuditReport: Codable, Sendable, Equatable {
    /// The `schema_version` this build writes and reads.
    /// Version 2 added each rule's `validity`. Version 3 added the FVU over sets of positions (each
    /// run's and the summary's `reconstruction`) and renamed each position's `fvu`, which was not
    /// one, to `relative_squared_error`. Version 4 added each rule's `line` in its file and each
    /// run's `pieces`, the token at every position, so a report can show its transcripts token by token.
    /// Version 5 added the model's `adapters` (absent when there are none). Version 6 added each
    /// rule's `calibration`, the threshold a suite's `calibrate:` chose on the audited model (absent
    /// when the rule judged at its file's threshold).
    public static let schemaVersion = 7

    public var schemaVersion: Int
    public var probityVersion: String
    /// False when the run was interrupted: only the finished cases are present.
    public var complete: Bool
    /// ISO 8601 timestamps.
    public var startedAt: String
    public var finishedAt: String
    public var model: Model
    public var packs: [Pack]
    public var ruleFiles: [FileDigest]
    public var rules: [Rule]
    public var suite: Suite
    public var settings: Settings
    public var timings: Timings
    public var summary: Summary
    public var cases: [Case]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case schemaVersion = "schema_version", probityVersion = "probity_version", complete
        case startedAt = "started_at", finishedAt = "finished_at", model, packs
        case ruleFiles = "rule_files", rules, suite, settings, timings, summary, cases
    }

    /// The model file: its name (GGUF `general.name`), SHA-256, and path (`default` for the default model).
    public struct Model: Codable, Sendable, Equatable {
        public var name: String
        public var sha256: String
        public var path: String
        /// The LoRA adapters applied to it, in order; absent (nil) when none were.
        public var adapters: [Adapter]?
    }

    /// A LoRA adapter applied to the model: its file, SHA-256 and scale (docs/lora.md).
    public struct Adapter: Codable, Sendable, Equatable {
        public var path: String
        public var sha256: String
        public var scale: Float
    }

    /// A feature pack the rules use. `sha256` digests the sorted lines `FILE SHA256` of its files.
    public struct Pack: Codable, Sendable, Equatable {
        public var name: String
        public var path: String
        public var sha256: String
    }

    /// A file and its SHA-256.
    public struct FileDigest: Codable, Sendable, Equatable {
        public var path: String
        public var sha256: String
    }

    /// A rule of the suite.
    public struct Rule: Codable, Sendable, Equatable {
        public var id: String
        public var severity: RuleSeverity
        public var description: String
        public var file: String
        /// The line of `file` where the rule's entry starts (1-based).
        public var line: Int
        /// The rule has interventions or stops generation.
        public var intervenes: Bool
        /// What `probity eval` measured for the rule, as its file records; absent when unmeasured.
        public var validity: Validity?
        /// The threshold the suite's `calibrate:` chose on the audited model's own answers, which the
        /// cases were judged at; absent when the rule judged at its file's threshold.
        public var calibration: Calibration?

        /// "AUROC 0.93, benign FPR 2%", or "unmeasured": how far to trust a finding of this rule.
        public var trust: String {
            guard let v = validity else { return "unmeasured" }
            return String(format: "AUROC %.2f, benign FPR %.0f%%", v.auroc, v.benignFPR * 100)
        }
    }

    /// A rule's measured validity (docs/eval.md): AUROC on held-out labelled data, rates at its
    /// threshold, the data's digest and size.
    public struct Validity: Codable, Sendable, Equatable {
        public var auroc: Double
        public var tpr: Double
        public var fpr: Double
        public var benignFPR: Double
        public var data: String
        public var n: Int

        enum CodingKeys: String, CodingKey, CaseIterable {
            case auroc, tpr, fpr, benignFPR = "benign_fpr", data, n
        }
    }

    /// A threshold chosen at run time (docs/audits.md, "Calibrating on the audited model"): at most
    /// ⌊`target_fpr`·n⌋ of the n calibration answers fire at `threshold`.
    public struct Calibration: Codable, Sendable, Equatable {
        public var threshold: Double
        /// The rule file's own threshold, not used in this run.
        public var shippedThreshold: Double
        public var targetFPR: Double
        /// Calibration answers that fire at `threshold`, of `answers.count`.
        public var fired: Int
        public var answers: [Answer]

        enum CodingKeys: String, CodingKey, CaseIterable {
            case threshold, shippedThreshold = "shipped_threshold", targetFPR = "target_fpr", fired, answers
        }

        /// One calibration answer: its case id, the rule's score (absent when never judged) and
        /// whether it fires at the chosen threshold.
        public struct Answer: Codable, Sendable, Equatable {
            public var id: String
            public var score: Double?
            public var fires: Bool
        }
    }

    /// The suite file; `cases` counts all its cases, whatever the shard.
    public struct Suite: Codable, Sendable, Equatable {
        public var name: String
        public var path: String
        public var sha256: String
        public var cases: Int
    }

    /// Generation settings and how the run was judged.
    public struct Settings: Codable, Sendable, Equatable {
        public var maxTokens: Int
        public var temperature: Double
        public var topP: Double
        public var seed: UInt64
        public var chatFormat: String
        public var failOn: RuleSeverity
        public var shard: Shard
        /// How the KV cache stored keys and values when not in floats (`--kv-cache f16`); absent for
        /// the default float cache, so a default report's bytes do not change.
        public var kvCache: KVCacheStorage? = nil
        /// How decode's products took their input when not in float32 (`--activations q8`, DESIGN.md
        /// "Numerics"); absent for the default, so a default report's bytes do not change.
        public var activations: ActivationPrecision? = nil

        enum CodingKeys: String, CodingKey, CaseIterable {
            case maxTokens = "max_tokens", temperature, topP = "top_p", seed, chatFormat = "chat_format"
            case failOn = "fail_on", shard, kvCache = "kv_cache", activations
        }
    }

    /// Shard `index` of `count` (1-based).
    public struct Shard: Codable, Sendable, Equatable {
        public var index: Int
        public var count: Int
    }

    /// Wall-clock seconds: the whole run, and per case id.
    public struct Timings: Codable, Sendable, Equatable {
        public var totalSeconds: Double
        public var cases: [String: Double]

        enum CodingKeys: String, CodingKey, CaseIterable {
            case totalSeconds = "total_seconds", cases
        }
    }

    /// Findings (rules firing on baseline runs, counted per case), the verdict, and per SAE pack the
    /// FVU over the baseline runs' positions of every case.
    public struct Summary: Codable, Sendable, Equatable {
        public var cases: Int
        public var casesFailed: Int
        public var findings: Int
        public var findingsBySeverity: [RuleSeverity: Int]
        public var findingsByRule: [String: Int]
        public var findingsAtOrAboveFailOn: Int
        public var expectationsFailed: Int
        public var passed: Bool
        /// Per SAE pack (by name), over the baseline runs of all cases (empty without SAE packs).
        public var reconstruction: [PooledReconstruction]

        enum CodingKeys: String, CodingKey, CaseIterable {
            case cases, casesFailed = "cases_failed", findings, findingsBySeverity = "findings_by_severity"
            case findingsByRule = "findings_by_rule", findingsAtOrAboveFailOn = "findings_at_or_above_fail_on"
            case expectationsFailed = "expectations_failed", passed, reconstruction
        }
    }

    /// One SAE pack's FVU over a run's positions (non-special tokens after position 0), of the
    /// prompt and of the response (the generated tokens that went through the model).
    public struct Reconstruction: Codable, Sendable, Equatable {
        public var pack: String
        public var prompt: FVU
        public var response: FVU
    }

    /// The fraction of variance unexplained over a set of positions, centred on their own mean:
    /// Σ‖x − x̂‖² / Σ‖x − x̄‖² (SAELens's FVU), with its two sums.
    public struct FVU: Codable, Sendable, Equatable {
        public var positions: Int
        /// Σ‖x − x̂‖².
        public var squaredError: Double
        /// Σ‖x − x̄‖², x̄ the mean of these positions.
        public var totalVariance: Double
        /// squared_error / total_variance; absent with fewer than two distinct positions.
        public var fvu: Double?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case positions, squaredError = "squared_error", totalVariance = "total_variance", fvu
        }
    }

    /// One SAE pack's FVU over the positions of every case's baseline run, prompt and response.
    public struct PooledReconstruction: Codable, Sendable, Equatable {
        public var pack: String
        public var prompt: PooledFVU
        public var response: PooledFVU
    }

    /// `FVU` over positions of many cases, centred on the mean of them all; with that mean, so that
    /// shard reports join into the FVU of their union.
    public struct PooledFVU: Codable, Sendable, Equatable {
        public var positions: Int
        public var squaredError: Double
        public var totalVariance: Double
        public var fvu: Double?
        /// x̄, the mean activation of these positions (empty without positions).
        public var mean: [Double]

        enum CodingKeys: String, CodingKey, CaseIterable {
            case positions, squaredError = "squared_error", totalVariance = "total_variance", fvu, mean
        }
    }

    /// One case: its prompt, the baseline run, and with intervening rules the steered run and its effects.
    public struct Case: Codable, Sendable, Equatable {
        public var id: String
        /// The case's index in the suite (0-based), which orders merged shards.
        public var index: Int
        public var prompt: String
        public var promptTokens: Int
        /// Where the case is defined (`file:line:col`).
        public var location: String
        public var baseline: Run
        public var steered: Run?
        public var effects: Effects?
        public var expectations: [Expectation]
        public var expectationsPassed: Bool

        enum CodingKeys: String, CodingKey, CaseIterable {
            case id, index, prompt, promptTokens = "prompt_tokens", location, baseline, steered, effects
            case expectations, expectationsPassed = "expectations_passed"
        }
    }

    /// Why a run's generation ended.
    public enum FinishReason: String, Codable, Sendable, Equatable, CaseIterable {
        /// max_tokens or the context's end.
        case length
        /// The end-of-sequence token.
        case eos
        /// The end-of-turn stop string.
        case stop
        /// A rule with `stop: true` fired (steered runs only).
        case rule
    }

    /// One generation with the rules attached.
    public struct Run: Codable, Sendable, Equatable {
        public var text: String
        /// Tokens generated.
        public var tokens: Int
        public var finishReason: FinishReason
        public var fired: [Firing]
        /// The token at each position, prompt then generated tokens, as the tokenizer renders it
        /// alone (the positions of `fired` and `features` index this).
        public var pieces: [String]
        /// Per position, the top latents and relative squared error of each SAE pack (SAE packs only;
        /// absent otherwise).
        public var features: [PositionFeatures]?
        /// Per SAE pack, the FVU over this run's prompt and response positions (absent without SAE packs).
        public var reconstruction: [Reconstruction]?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case text, tokens, finishReason = "finish_reason", fired, pieces, features, reconstruction
        }
    }

    /// A rule that fired on a run.
    public struct Firing: Codable, Sendable, Equatable {
        public var rule: String
        public var severity: RuleSeverity
        /// The detection's aggregate (max, mean or count) over its scope.
        public var value: Double
        public var positions: [FiringPosition]
    }

    /// A position where a fired rule's watched features reach its threshold.
    public struct FiringPosition: Codable, Sendable, Equatable {
        public var position: Int
        /// The token there (-1 when the position lies past the run's tokens).
        public var token: Int
        public var piece: String
        /// Feature label → activation.
        public var activations: [String: Double]
    }

    /// The SAE packs' view of one position.
    public struct PositionFeatures: Codable, Sendable, Equatable {
        public var position: Int
        public var packs: [PackFeatures]
    }

    /// One SAE pack's top latents at a position, and its reconstruction's relative squared error
    /// there, ‖x − x̂‖² / ‖x‖² (not a fraction of variance: see `FVU`).
    public struct PackFeatures: Codable, Sendable, Equatable {
        public var pack: String
        public var relativeSquaredError: Double
        public var top: [Latent]

        enum CodingKeys: String, CodingKey, CaseIterable {
            case pack, relativeSquaredError = "relative_squared_error", top
        }
    }

    /// An SAE latent and its activation.
    public struct Latent: Codable, Sendable, Equatable {
        public var latent: Int
        public var activation: Double
    }

    /// What the interventions changed along the steered path.
    public struct Effects: Codable, Sendable, Equatable {
        public var textChanged: Bool
        /// KL(baseline ‖ steered) in nats per generated position of the steered path.
        public var kl: [Double]?
        public var klMean: Double?
        public var klMax: Double?
        public var top1ChangedFraction: Double?
        /// The tokens whose probability every rule steering together moved most (absent when no
        /// pass was measured).
        public var topChanges: TopChanges? = nil
        public var interventions: [InterventionEffect]

        enum CodingKeys: String, CodingKey, CaseIterable {
            case textChanged = "text_changed", kl, klMean = "kl_mean", klMax = "kl_max"
            case top1ChangedFraction = "top1_changed_fraction", topChanges = "top_changes", interventions
        }
    }

    /// The tokens whose probability a steered pass moved most against the baseline along the
    /// steered path, whatever tokens the rules name: means over its generated positions.
    public struct TopChanges: Codable, Sendable, Equatable {
        /// Largest mean rise in probability first; only tokens that rose.
        public var raised: [TokenChange]
        /// Largest mean fall first; only tokens that fell.
        public var lowered: [TokenChange]

        enum CodingKeys: String, CodingKey, CaseIterable {
            case raised, lowered
        }
    }

    /// One token's mean change along the steered path.
    public struct TokenChange: Codable, Sendable, Equatable {
        public var token: String
        public var id: Int
        /// Steered − baseline probability, mean over the generated positions.
        public var probabilityDelta: Double
        /// Steered − baseline logit, mean over the generated positions.
        public var logitDelta: Double

        enum CodingKeys: String, CodingKey, CaseIterable {
            case token, id, probabilityDelta = "probability_delta", logitDelta = "logit_delta"
        }
    }

    /// One intervening rule's share of the steered run.
    public struct InterventionEffect: Codable, Sendable, Equatable {
        public var rule: String
        public var positionsEdited: Int
        public var firedBaseline: Bool
        public var firesAfter: Bool
        /// Per token the rule names: steered − baseline logit, mean over the generated positions, every rule steering.
        public var logitDeltas: [String: Double]
        /// The same at the first generated position.
        public var logitDeltasFirst: [String: Double]?
        /// One teacher-forced pass along the steered path with only this rule's interventions.
        public var alone: AloneEffect?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case rule, positionsEdited = "positions_edited", firedBaseline = "fired_baseline", firesAfter = "fires_after"
            case logitDeltas = "logit_deltas", logitDeltasFirst = "logit_deltas_first", alone
        }
    }

    /// A rule's interventions alone along the steered path.
    public struct AloneEffect: Codable, Sendable, Equatable {
        /// KL(baseline ‖ this rule alone) in nats per generated position.
        public var kl: [Double]
        public var klMean: Double
        public var klMax: Double
        public var top1ChangedFraction: Double
        public var positionsEdited: Int
        /// Whether the rule fires in that pass.
        public var fires: Bool
        public var logitDeltas: [String: Double]
        public var logitDeltasFirst: [String: Double]
        /// The tokens whose probability this rule's interventions alone moved most.
        public var topChanges: TopChanges? = nil

        enum CodingKeys: String, CodingKey, CaseIterable {
            case kl, klMean = "kl_mean", klMax = "kl_max", top1ChangedFraction = "top1_changed_fraction"
            case positionsEdited = "positions_edited", fires, logitDeltas = "logit_deltas", logitDeltasFirst = "logit_deltas_first"
            case topChanges = "top_changes"
        }
    }

    /// Whether a rule fired (on the baseline run), as expectations state it.
    public enum Verdict: String, Codable, Sendable, Equatable {
        case fires, silent
    }

    /// A case's expectation about a rule, and how the baseline run met it.
    public struct Expectation: Codable, Sendable, Equatable {
        public var rule: String
        public var expected: Verdict
        public var actual: Verdict
        public var passed: Bool
        public var location: String
    }
}
