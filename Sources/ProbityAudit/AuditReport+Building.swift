// Building an audit report from the runner's case results (docs/audits.md): each run's firings with
// the tokens they fired on, the SAE packs' per-position features, the interventions' effects, and
// the expectations met or violated.

import Foundation
import ProbityFeatures
import ProbityLM
import ProbityRules
import ProbityTensor

extension AuditReport {
    /// What the report says about where it came from.
    public struct Header: Sendable {
        public var probityVersion: String
        public var suite: AuditSuite
        public var suiteSHA256: String
        public var model: Model
        public var packs: [Pack]
        public var ruleFiles: [FileDigest]
        public var failOn: RuleSeverity
        public var shard: Shard
        /// How the KV cache stored keys and values.
        public var kvCache: KVCacheStorage
        /// How decode's products took their input.
        public var activations: ActivationPrecision

        public init(probityVersion: String, suite: AuditSuite, suiteSHA256: String, model: Model,
                    packs: [Pack], ruleFiles: [FileDigest], failOn: RuleSeverity, shard: Shard,
                    kvCache: KVCacheStorage = .f32, activations: ActivationPrecision = .f32) {
            self.probityVersion = probityVersion
            self.suite = suite
            self.suiteSHA256 = suiteSHA256
            self.model = model
            self.packs = packs
            self.ruleFiles = ruleFiles
            self.failOn = failOn
            self.shard = shard
            self.kvCache = kvCache
            self.activations = activations
        }
    }

    /// The report of `results`, run with `rules`; `tokenizer` names each fired position's token.
    public init(header h: Header, rules: [RuleInfo], results: [CaseResult], complete: Bool,
                startedAt: Date, finishedAt: Date, tokenizer: (Int) -> String) {
        let s = h.suite.settings
        let severities = Dictionary(rules.map { ($0.id, $0.severity) }, uniquingKeysWith: { a, _ in a })
        let cases = results.map { Case($0, severities: severities, tokenizer: tokenizer) }
        self.init(
            schemaVersion: Self.schemaVersion, probityVersion: h.probityVersion, complete: complete,
            startedAt: ISO8601DateFormatter().string(from: startedAt), finishedAt: ISO8601DateFormatter().string(from: finishedAt),
            model: h.model,
            packs: h.packs, ruleFiles: h.ruleFiles,
            rules: rules.map { r in
                Rule(id: r.id, severity: r.severity, description: r.description, file: r.file, line: r.line, intervenes: r.intervenes,
                     validity: r.validity.map { Validity(auroc: $0.auroc, tpr: $0.tpr, fpr: $0.fpr, benignFPR: $0.benignFPR,
                                                         data: $0.data, n: $0.n) },
                     calibration: r.calibration.map { c in
                         Calibration(threshold: c.threshold, shippedThreshold: c.shippedThreshold, targetFPR: c.targetFPR,
                                     fired: c.answers.count(where: \.fires),
                                     answers: c.answers.map { Calibration.Answer(id: $0.id, score: $0.score, fires: $0.fires) })
                     })
            },
            suite: Suite(name: h.suite.name, path: h.suite.path, sha256: h.suiteSHA256, cases: h.suite.cases.count),
            settings: Settings(maxTokens: s.maxTokens, temperature: s.temperature, topP: s.topP, seed: s.seed,
                               chatFormat: s.chatFormat, failOn: h.failOn, shard: h.shard,
                               kvCache: h.kvCache == .f32 ? nil : h.kvCache,
                               activations: h.activations == .f32 ? nil : h.activations),
            timings: Timings(totalSeconds: finishedAt.timeIntervalSince(startedAt),
                             cases: Dictionary(results.map { ($0.auditCase.id, $0.seconds) }, uniquingKeysWith: { a, _ in a })),
            summary: Summary(cases: cases, rules: rules.map { ($0.id, $0.severity) }, failOn: h.failOn, complete: complete,
                             reconstruction: Self.pooled(results.map(\.baseline.reconstruction))),
            cases: cases)
    }
}

extension AuditReport.Model {
    /// The model `loaded` from `name` (`default` or a path): its GGUF `general.name` (else the file's
    /// name), SHA-256, and `default` as its path when it is the default model.
    public init(_ loaded: LoadedModel, loadedFrom name: String) throws {
        let adapters = try loaded.adapters.map {
            AuditReport.Adapter(path: $0.path, sha256: try SHA256.hex(file: $0.path), scale: $0.scale)
        }
        self.init(name: loaded.file.value("general.name")?.stringValue ?? URL(fileURLWithPath: loaded.path).lastPathComponent,
                  sha256: try Audit.modelDigest(loaded.path), path: name == "default" ? "default" : loaded.path,
                  adapters: adapters.isEmpty ? nil : adapters)
    }
}

extension AuditReport.FileDigest {
    /// Each file of `paths` with its SHA-256.
    static func of(_ paths: [String]) throws -> [AuditReport.FileDigest] {
        try paths.map { AuditReport.FileDigest(path: $0, sha256: try SHA256.hex(file: $0)) }
    }
}

extension AuditReport.Case {
    /// A case's results as the report shows them.
    init(_ r: CaseResult, severities: [String: RuleSeverity], tokenizer: (Int) -> String) {
        let firedBaseline = Set(r.baseline.outcomes.filter(\.fired).map(\.rule))
        var steered: AuditReport.Run?
        var effects: AuditReport.Effects?
        if let s = r.steered {
            steered = AuditReport.Run(s, prompt: r.promptTokens, severities: severities, tokenizer: tokenizer)
            let firedSteered = Set(s.outcomes.filter(\.fired).map(\.rule))
            let interventions = s.applications.keys.sorted().map { id in
                let deltas = r.effects?.logitDeltas[id] ?? [:]
                return AuditReport.InterventionEffect(
                    rule: id, positionsEdited: s.applications[id] ?? 0,
                    firedBaseline: firedBaseline.contains(id), firesAfter: firedSteered.contains(id),
                    logitDeltas: AuditReport.meanDeltas(deltas), logitDeltasFirst: AuditReport.firstDeltas(deltas),
                    alone: r.effects?.alone[id].map { a in
                        AuditReport.AloneEffect(kl: a.kl, klMean: AuditReport.mean(a.kl), klMax: a.kl.max() ?? 0,
                                                top1ChangedFraction: a.top1ChangedFraction, positionsEdited: a.positionsEdited,
                                                fires: a.fires, logitDeltas: AuditReport.meanDeltas(a.logitDeltas),
                                                logitDeltasFirst: AuditReport.firstDeltas(a.logitDeltas),
                                                topChanges: AuditReport.TopChanges(a.topShifts, tokenizer: tokenizer))
                    })
            }
            effects = AuditReport.Effects(
                textChanged: s.text != r.baseline.text, kl: r.effects?.kl, klMean: r.effects.map { AuditReport.mean($0.kl) },
                klMax: r.effects.map { $0.kl.max() ?? 0 }, top1ChangedFraction: r.effects?.top1ChangedFraction,
                topChanges: r.effects.map { AuditReport.TopChanges($0.topShifts, tokenizer: tokenizer) }, interventions: interventions)
        }
        let expectations = r.auditCase.expectations.map { e in
            let actual = firedBaseline.contains(e.rule)
            return AuditReport.Expectation(rule: e.rule, expected: e.fires ? .fires : .silent, actual: actual ? .fires : .silent,
                                           passed: actual == e.fires, location: e.location.description)
        }
        self.init(id: r.auditCase.id, index: r.index, prompt: r.prompt, promptTokens: r.promptTokens.count,
                  location: r.auditCase.location.description,
                  baseline: AuditReport.Run(r.baseline, prompt: r.promptTokens, severities: severities, tokenizer: tokenizer),
                  steered: steered, effects: effects, expectations: expectations,
                  expectationsPassed: expectations.allSatisfy(\.passed))
    }
}

extension AuditReport.TopChanges {
    /// The runner's shifts with each token's piece.
    init(_ s: TopShifts, tokenizer: (Int) -> String) {
        func change(_ x: TopShifts.Shift) -> AuditReport.TokenChange {
            AuditReport.TokenChange(token: tokenizer(x.token), id: x.token, probabilityDelta: x.probabilityDelta, logitDelta: x.logitDelta)
        }
        self.init(raised: s.raised.map(change), lowered: s.lowered.map(change))
    }
}

extension AuditReport.Run {
    /// A run as the report shows it: the rules that fired, with the tokens at their positions.
    public init(_ run: RunResult, prompt: [Int], severities: [String: RuleSeverity], tokenizer: (Int) -> String) {
        let all = prompt + run.tokens
        let fired = run.outcomes.filter(\.fired).map { o in
            AuditReport.Firing(
                rule: o.rule, severity: severities[o.rule] ?? .info, value: o.value,
                positions: o.positions.map { p in
                    let token = p.position >= 0 && p.position < all.count ? all[p.position] : -1
                    return AuditReport.FiringPosition(position: p.position, token: token, piece: token >= 0 ? tokenizer(token) : "",
                                                      activations: p.activations)
                })
        }
        let features = run.features.isEmpty ? nil : run.features.keys.sorted().map { position in
            AuditReport.PositionFeatures(position: position, packs: (run.features[position] ?? []).map { f in
                AuditReport.PackFeatures(pack: f.pack, relativeSquaredError: f.relativeError,
                                         top: f.top.map { AuditReport.Latent(latent: $0.index, activation: $0.activation) })
            })
        }
        self.init(text: run.text, tokens: run.tokens.count, finishReason: AuditReport.FinishReason(run.finishReason),
                  fired: fired, pieces: all.map(tokenizer), features: features,
                  reconstruction: run.reconstruction.isEmpty ? nil : run.reconstruction.map(AuditReport.Reconstruction.init))
    }
}

extension AuditReport.FinishReason {
    /// How the report names a generation's end: a `stop` rule's halt is `rule`.
    init(_ reason: ProbityLM.FinishReason) {
        switch reason {
        case .eos: self = .eos
        case .stop: self = .stop
        case .length: self = .length
        case .halted: self = .rule
        // The runner abandons an interrupted case (nil), so no report holds one.
        case .interrupted: preconditionFailure("an interrupted run reached the report")
        }
    }
}

extension AuditReport {
    static func mean(_ x: [Double]) -> Double { x.isEmpty ? 0 : x.reduce(0, +) / Double(x.count) }

    /// Token → mean delta over the generated positions (tokens with no positions are left out).
    static func meanDeltas(_ d: [String: [Double]]) -> [String: Double] {
        d.filter { !$0.value.isEmpty }.mapValues(mean)
    }

    /// Token → delta at the first generated position.
    static func firstDeltas(_ d: [String: [Double]]) -> [String: Double] {
        d.compactMapValues(\.first)
    }
}
