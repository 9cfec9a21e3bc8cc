// The audit's view of compiled rules: `CompiledRules` and a `RuleRun` per generation
// (docs/rules.md "Running rules"), reshaped into the outcomes, edit counts and SAE records the
// audit report needs (docs/audits.md).

import Foundation
import ProbityFeatures
import ProbityLM
import ProbityRules

/// What a rule is, for reports.
public struct RuleInfo: Sendable, Equatable {
    public var id: String
    public var severity: RuleSeverity
    public var description: String
    public var file: String
    /// The line of `file` where the rule starts.
    public var line: Int
    /// The rule has interventions or stops generation.
    public var intervenes: Bool
    /// What `probity eval` measured for it, as its file records; nil when unmeasured.
    public var validity: RuleValidity?
    /// The threshold the suite's `calibrate:` block chose for it on the audited model; nil when the
    /// rule judges at its file's threshold.
    public var calibration: RuleCalibration? = nil
}

/// A threshold chosen at run time on the audited model's own answers (a suite's `calibrate:`).
public struct RuleCalibration: Sendable, Equatable {
    /// One calibration answer: its case id, the rule's score on it (nil: never judged, too short
    /// for its min_tokens) and whether it fires at the chosen threshold.
    public struct Answer: Sendable, Equatable {
        public var id: String
        public var score: Double?
        public var fires: Bool
    }
    /// The threshold the cases were judged at.
    public var threshold: Double
    /// The rule file's own threshold, which the run did not use.
    public var shippedThreshold: Double
    public var targetFPR: Double
    public var answers: [Answer]
}

/// One rule's verdict over a sequence.
public struct RuleOutcome: Sendable, Equatable {
    public var rule: String
    public var fired: Bool
    /// The detection's aggregate (peak max or mean, or the count) for the first watched feature
    /// that reached its threshold (or the first watched feature).
    public var value: Double
    /// Positions in the scope where the watched features reach the threshold, with their activations
    /// (feature label → value).
    public var positions: [(position: Int, activations: [String: Double])]
    /// False when the rule was never judged (its scope held fewer than `min_tokens` tokens): then
    /// `value` is 0 and the rule cannot fire at any threshold.
    public var judged: Bool = true

    public static func == (a: RuleOutcome, b: RuleOutcome) -> Bool {
        a.rule == b.rule && a.fired == b.fired && a.value == b.value && a.positions.map(\.position) == b.positions.map(\.position)
    }
}

/// Rules ready to instrument a run.
public protocol AuditRules {
    var infos: [RuleInfo] { get }
    /// Hooks for one generation: detection, and with `steer` the interventions and stops; `only`,
    /// when given, keeps just the rules with these ids.
    func instrument(model: ModelInfo, steer: Bool, only: Set<String>?) throws -> any RuleRecorder
    /// The rules with interventions, in compile order, each with the tokens its `effects` names.
    var steering: [(rule: String, tokens: [(text: String, id: Int)])] { get }
    /// The first position of a prompt of `length` tokens that a steered run may edit, the prompt
    /// run as one step (nil: none; a case's runs may share the positions before it).
    func firstEditablePromptPosition(length: Int) -> Int?
    /// Hooks with every rule attached whose interventions decide their edits and count them in
    /// `applications` without making them (`FeaturePlan.decidesOnly`): a pass with them computes
    /// what an unsteered pass computes, and a rule they count no edit for would edit nothing in a
    /// pass of its own. Nil when the rules cannot say (the runner then runs every pass).
    func instrumentDecisions(model: ModelInfo) throws -> (any RuleRecorder)?
}

extension AuditRules {
    /// Hooks with every rule attached.
    public func instrument(model: ModelInfo, steer: Bool) throws -> any RuleRecorder {
        try instrument(model: model, steer: steer, only: nil)
    }

    public func instrumentDecisions(model: ModelInfo) throws -> (any RuleRecorder)? { nil }
}

/// Which SAE packs a recorder reads at every position for `featureRecords`, and how many latents
/// it keeps there: by default the rules' own SAE packs, five latents each (what reports show).
public struct FeatureWatch: Sendable {
    /// Latents kept per position and pack; 0 records nothing.
    public var top: Int
    /// The SAEs to read; nil: every SAE pack a rule of the run watches.
    public var packs: [SAEBinding]?

    public init(top: Int, packs: [SAEBinding]?) {
        self.top = top
        self.packs = packs
    }

    /// The report's view: the rules' SAE packs, top 5.
    public static let rules = FeatureWatch(top: 5, packs: nil)
    /// No per-position records at all.
    public static let none = FeatureWatch(top: 0, packs: [])
}

/// What a run records and decides as it goes.
public protocol RuleRecorder: AnyObject {
    /// The hooks to pass to the forward pass.
    var hooks: HookSet { get }
    /// Whether a `stop` rule has fired (steered runs only).
    var shouldStop: Bool { get }
    /// Every rule's verdict over the first `length` positions.
    func evaluate(length: Int) -> [RuleOutcome]
    /// Per rule with interventions: positions its interventions edited.
    var applications: [String: Int] { get }
    /// Every rule edit, in compile order: its rule, feature label, action and the positions it
    /// changed (steered runs only; empty otherwise).
    var edits: [(rule: String, feature: String, action: String, positions: [Int])] { get }
    /// Per position: the SAE packs' top features and relative squared error (empty without SAE packs).
    var featureRecords: [Int: [(pack: String, relativeError: Double, top: [ActiveLatent])]] { get }
    /// Per SAE pack (by name): the FVU sums over the run's prompt and generated positions (`countsForFVU`).
    var reconstruction: [PackTally] { get }
}

/// Rule files compiled by `CompiledRules`, for the audit runner.
public final class AuditRuleSet: AuditRules {
    public let compiled: CompiledRules
    public let infos: [RuleInfo]
    /// Pack name, path and SHA-256 (of the sorted lines "file sha256" of its regular files), for reports.
    public let packDigests: [AuditReport.Pack]
    /// Which positions the FVU counts (`countsForFVU`: not the attention sink, not special tokens).
    let counts: @Sendable (_ position: Int, _ token: Int) -> Bool

    /// Loads, checks and compiles `files` for `model`.
    public convenience init(files: [String], model: LoadedModel) throws {
        let compiled: CompiledRules
        do { compiled = try CompiledRules.compile(files: files, model: model) } catch RulesError.invalid(let d) {
            throw AuditError.rules(d)
        }
        self.init(compiled: compiled, counts: countsForFVU(model.tokenizer))
    }

    /// Rules already compiled; `counts` says which positions the FVU counts; `calibrations` (by rule
    /// id) record the thresholds a suite's `calibrate:` chose, already in `compiled`.
    init(compiled: CompiledRules, counts: @escaping @Sendable (_ position: Int, _ token: Int) -> Bool,
         calibrations: [String: RuleCalibration] = [:]) {
        self.compiled = compiled
        infos = compiled.rules.map {
            RuleInfo(id: $0.id, severity: $0.rule.severity, description: $0.rule.description, file: $0.resolved.file,
                     line: $0.rule.location.line, intervenes: !$0.interventions.isEmpty || $0.rule.stop, validity: $0.rule.validity,
                     calibration: calibrations[$0.id])
        }
        self.counts = counts
        packDigests = compiled.packs.map { p in
            AuditReport.Pack(name: p.name, path: AuditSuite.normalize(p.path),
                             sha256: SHA256.hex(Array(p.files.map { "\($0.name) \($0.sha256)\n" }.joined().utf8)))
        }
    }

    /// The same rules with every intervention's edit multiplied by `s` (CompiledRules.atStrength).
    public func atStrength(_ s: Double) -> AuditRuleSet {
        AuditRuleSet(compiled: compiled.atStrength(s), counts: counts, calibrations: calibrations)
    }

    /// The same rules judging at the thresholds `calibrations` chose (CompiledRules.withThresholds).
    public func calibrated(_ calibrations: [String: RuleCalibration]) -> AuditRuleSet {
        let thresholds = calibrations.mapValues { Float($0.threshold) }
        return AuditRuleSet(compiled: compiled.withThresholds(thresholds), counts: counts,
                            calibrations: self.calibrations.merging(calibrations) { _, new in new })
    }

    /// The thresholds chosen at run time, by rule id.
    var calibrations: [String: RuleCalibration] {
        Dictionary(infos.compactMap { i in i.calibration.map { (i.id, $0) } }, uniquingKeysWith: { a, _ in a })
    }

    public func instrument(model: ModelInfo, steer: Bool, only: Set<String>?) throws -> any RuleRecorder {
        try Recorder(rules: compiled, model: model, steer: steer, only: only, counts: counts)
    }

    public func instrumentDecisions(model: ModelInfo) throws -> (any RuleRecorder)? {
        try Recorder(rules: compiled, model: model, steer: true, decidesOnly: true, counts: counts, features: .none)
    }

    /// `instrument` recording `features` per position instead of the rules' own SAE packs.
    public func instrument(model: ModelInfo, steer: Bool, only: Set<String>?, features: FeatureWatch) throws -> any RuleRecorder {
        try Recorder(rules: compiled, model: model, steer: steer, only: only, counts: counts, features: features)
    }

    public var steering: [(rule: String, tokens: [(text: String, id: Int)])] {
        compiled.rules.filter { !$0.interventions.isEmpty }.map { ($0.id, $0.effectTokens) }
    }

    public func firstEditablePromptPosition(length: Int) -> Int? {
        compiled.firstEditablePromptPosition(length: length)
    }

    static func label(_ f: ResolvedFeature) -> String {
        switch f.target {
        case .latent(let i): return "\(f.pack)[\(i)]"
        case .direction(let name), .probe(let name): return "\(f.pack)/\(name)"
        }
    }

    final class Recorder: RuleRecorder {
        let run: RuleRun
        let rules: [CompiledRule]
        var saeMonitors: [(key: String, monitor: FeatureMonitor)] = []
        let top: Int

        init(rules all: CompiledRules, model: ModelInfo, steer: Bool, decidesOnly: Bool = false, only: Set<String>? = nil,
             counts: @escaping @Sendable (_ position: Int, _ token: Int) -> Bool, features: FeatureWatch = .rules) throws {
            let rules = all.rules.filter { only?.contains($0.id) ?? true }
            self.rules = rules
            top = features.top
            // The SAE packs' top features per position, for the report (each SAE at its point once),
            // read before the edits.
            let plan = FeaturePlan()
            var seen: Set<String> = []
            let bindings = features.packs ?? rules.flatMap { r in
                r.features.compactMap { f -> SAEBinding? in
                    guard case .latent(let b, _) = f.target else { return nil }
                    return b
                }
            }
            for b in bindings where features.top > 0 {
                let key = "\(b.point.name)/\(b.name)"
                if seen.insert(key).inserted {
                    saeMonitors.append((key, plan.monitor(b, top: features.top, threshold: 0, reconstruct: true, counts: counts)))
                }
            }
            saeMonitors.sort { $0.key < $1.key }
            run = try all.makeRun(steered: steer, decidesOnly: decidesOnly, only: only, observers: saeMonitors.isEmpty ? nil : plan)
        }

        var hooks: HookSet { run.hooks }
        // The baseline is the model as it is: a `stop` rule ends only the steered run.
        var shouldStop: Bool { run.steered && run.shouldStop }

        func evaluate(length: Int) -> [RuleOutcome] {
            zip(rules, run.results()).map { rule, r in
                let labels = rule.features.map { AuditRuleSet.label($0.resolved) }
                let value: Double
                var judged = true
                if r.aggregate == .count { value = Double(r.count) } else {
                    let o = r.observations.first { ($0.value ?? -.infinity) >= $0.threshold } ?? r.observations.first
                    value = Double(o?.value ?? 0)
                    judged = o?.value != nil
                }
                let positions = r.crossings.filter { $0.position < length }.map { c in
                    (position: c.position,
                     activations: Dictionary(zip(labels, c.activations.map(Double.init)), uniquingKeysWith: { a, _ in a }))
                }
                return RuleOutcome(rule: r.rule, fired: r.fired, value: value, positions: positions, judged: judged)
            }
        }

        var applications: [String: Int] {
            guard run.steered else { return [:] }
            var out: [String: Int] = [:]
            for r in run.results() where !r.interventions.isEmpty {
                out[r.rule] = r.interventions.reduce(0) { $0 + $1.positions.count }
            }
            return out
        }

        var edits: [(rule: String, feature: String, action: String, positions: [Int])] {
            guard run.steered else { return [] }
            return run.results().flatMap { r in r.interventions.map { (r.rule, $0.feature, $0.action, $0.positions) } }
        }

        var featureRecords: [Int: [(pack: String, relativeError: Double, top: [ActiveLatent])]] {
            var out: [Int: [(pack: String, relativeError: Double, top: [ActiveLatent])]] = [:]
            for (_, m) in saeMonitors {
                // These monitors reconstruct, so every record has its error.
                for r in m.records {
                    guard let error = r.relativeError else { continue }
                    out[r.position, default: []].append((r.pack, error, Array(r.latents.prefix(top))))
                }
            }
            return out
        }

        var reconstruction: [PackTally] {
            saeMonitors.map { PackTally(pack: $0.monitor.binding.name, prompt: $0.monitor.promptTally, response: $0.monitor.generatedTally) }
        }
    }
}
