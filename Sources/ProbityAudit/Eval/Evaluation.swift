// `probity eval`: rules measured as detectors (docs/eval.md). Each labelled item's response is
// teacher-forced as the assistant turn after its conversation, rendered with the chat template as
// audits render cases, and every rule is judged on that pass by the same hooks and the same
// verdict code as an audit's baseline run (AuditRuleSet.instrument, RuleRecorder.evaluate).

import Foundation
import ProbityFeatures
import ProbityLM
import ProbityRules

/// Where an eval run stands, for a progress display.
public struct EvalProgress: Sendable, Equatable {
    public var done: Int, total: Int
    public var seconds: Double
}

/// Scores rules on labelled items.
public enum Evaluation {
    /// Per item, per rule: the detection's aggregate and whether the rule fires.
    public struct Scores: Sendable {
        /// Rule ids in compile order.
        public var rules: [RuleInfo]
        /// Tags of each rule, by id.
        public var tags: [String: [String]]
        /// `scores[i][r]`: item i under rule r; `judged` false when the rule was never judged on it
        /// (fewer scope tokens than its `min_tokens`: it cannot fire at any threshold).
        public var scores: [[(value: Double, fires: Bool, judged: Bool)]]
    }

    /// Each item's response tokens, as `teacherForce` runs them (`chatFormat` as there: a format
    /// name or auto).
    public static func responseTokens(items: [EvalItem], loaded: LoadedModel, chatFormat: String) throws -> [[Int]] {
        let format = try AuditRunner.chatFormat(chatFormat, of: loaded)
        return try items.map { try tokens(of: $0, loaded: loaded, format: format).response }
    }

    /// The prompt tokens (conversation with the generation prompt) and response tokens of an item.
    public static func tokens(of item: EvalItem, loaded: LoadedModel, format: ChatFormat) throws -> (prompt: [Int], response: [Int]) {
        let prompt = try AuditRunner.chatPrompt(item.messages, format: format, tokenizer: loaded.tokenizer).tokens
        let response = loaded.tokenizer.encode(item.response, addSpecial: false, parseSpecial: false)
        return (prompt, response)
    }

    /// Runs every item once through the model with `rules` attached (detection only) and records
    /// each rule's verdict. `progress` is called after each item.
    public static func score(items: [EvalItem], rules: AuditRuleSet, loaded: LoadedModel, chatFormat: String,
                             progress: (EvalProgress) -> Void = { _ in }) throws -> Scores {
        var out: [[(value: Double, fires: Bool, judged: Bool)]] = []
        out.reserveCapacity(items.count)
        try teacherForce(items: items, loaded: loaded, chatFormat: chatFormat, progress: progress) { _, length in
            let recorder = try rules.instrument(model: loaded.model.info, steer: false)
            return (recorder.hooks, {
                out.append(recorder.evaluate(length: length).map { ($0.value, $0.fired, $0.judged) })
            })
        }
        let tags = Dictionary(rules.compiled.rules.map { ($0.id, $0.rule.tags) }, uniquingKeysWith: { a, _ in a })
        return Scores(rules: rules.infos, tags: tags, scores: out)
    }

    /// The one pass every item gets: its conversation rendered with the chat template and the
    /// generation prompt, its response's tokens after it (origin `generated`), one forward pass over
    /// the whole sequence with the hooks `instrument` returns for it, then its `done`. `instrument`
    /// is given the item's index and its length in tokens. Scoring and probe training both run here.
    public static func teacherForce(items: [EvalItem], loaded: LoadedModel, chatFormat: String,
                                    progress: (EvalProgress) -> Void = { _ in },
                                    instrument: (Int, Int) throws -> (hooks: HookSet, done: () throws -> Void)) throws {
        let format = try AuditRunner.chatFormat(chatFormat, of: loaded)
        let model = loaded.model
        let clock = ContinuousClock()
        let start = clock.now
        for (n, item) in items.enumerated() {
            let (prompt, response) = try tokens(of: item, loaded: loaded, format: format)
            let path = prompt + response
            guard path.count <= model.info.contextLength else {
                throw AuditError.data(path: item.file, line: item.line,
                                      reason: "item '\(item.id)' is \(path.count) tokens, longer than the model's context (\(model.info.contextLength))")
            }
            let origins = [TokenOrigin](repeating: .prompt, count: prompt.count)
                + [TokenOrigin](repeating: .generated, count: response.count)
            let (hooks, done) = try instrument(n, path.count)
            let session = try model.makeSession(capacity: path.count)
            _ = try session.forward(path, origins: origins, hooks: hooks, logits: .none)
            try done()
            progress(EvalProgress(done: n + 1, total: items.count, seconds: (clock.now - start).seconds))
        }
    }

    /// Per rule: the items of its concepts (its tags) and the benign items, and the metrics over them.
    public static func results(items: [EvalItem], scores: Scores, resamples: Int = 1000,
                               unchecked: [String: [String]] = [:]) -> [EvalResult.RuleResult] {
        let concepts = Set(items.map(\.concept))
        return scores.rules.enumerated().map { r, info in
            let mine = Set(scores.tags[info.id] ?? []).intersection(concepts).subtracting([EvalItem.benign])
            var rows: [EvalResult.ItemScore] = []
            var pos: [Double] = [], neg: [Double] = [], benign: [Double] = []
            var posFires: [Bool] = [], negFires: [Bool] = [], benignFires: [Bool] = []
            for (i, item) in items.enumerated() {
                let isBenign = item.concept == EvalItem.benign
                guard isBenign || mine.contains(item.concept), i < scores.scores.count, r < scores.scores[i].count else { continue }
                let s = scores.scores[i][r]
                rows.append(EvalResult.ItemScore(id: item.id, label: item.positive ? 1 : 0, concept: item.concept,
                                                 score: s.value, fires: s.fires))
                if isBenign {
                    benign.append(s.value); benignFires.append(s.fires)
                } else if item.positive {
                    pos.append(s.value); posFires.append(s.fires)
                } else {
                    neg.append(s.value); negFires.append(s.fires)
                }
            }
            func interval(_ p: [Double], _ n: [Double]) -> EvalResult.Interval? {
                DetectorMetrics.bootstrapInterval(positives: p, negatives: n, resamples: resamples).map { .init(low: $0.low, high: $0.high) }
            }
            return EvalResult.RuleResult(
                rule: info.id, severity: info.severity, concepts: mine.sorted(),
                positives: pos.count, negatives: neg.count, benign: benign.count,
                auroc: DetectorMetrics.auroc(positives: pos, negatives: neg + benign), aurocInterval: interval(pos, neg + benign),
                aurocConcept: DetectorMetrics.auroc(positives: pos, negatives: neg), aurocConceptInterval: interval(pos, neg),
                tpr: DetectorMetrics.rate(posFires), fpr: DetectorMetrics.rate(negFires), benignFPR: DetectorMetrics.rate(benignFires),
                items: rows, leakageUnchecked: unchecked[info.id] ?? [], calibration: nil)
        }
    }

    /// Threshold calibration (`--calibrate`): the calibration files and the target FPR.
    public struct CalibrationRequest: Sendable {
        public var files: [String]
        public var targetFPR: Double

        public init(files: [String], targetFPR: Double) {
            self.files = files
            self.targetFPR = targetFPR
        }
    }

    /// Loads the model, the rules and the data, refuses data that derived a watched pack (and, with
    /// `calibrate`, calibration data that did, or that the test data shares), scores every item,
    /// and returns the measured result, with each rule's calibrated threshold when asked.
    public static func run(model name: String, adapters: [AdapterRequest] = [], ruleFiles: [String], dataFiles: [String],
                           calibrate: CalibrationRequest? = nil, chatFormat: String = "auto", version: String, threads: Int? = nil, resamples: Int = 1000,
                           progress: (EvalProgress) -> Void = { _ in }) throws -> EvalResult {
        guard !ruleFiles.isEmpty else { throw AuditError.badEval("no rule files to evaluate") }
        guard !dataFiles.isEmpty else { throw AuditError.badEval("no data: give --data FILE.jsonl") }
        let items = try EvalItem.load(paths: dataFiles)
        guard !items.isEmpty else { throw AuditError.badEval("the data files hold no items: \(dataFiles.joined(separator: ", "))") }
        var calibrationItems: [EvalItem] = []
        if let calibrate {
            guard calibrate.targetFPR >= 0, calibrate.targetFPR < 1 else {
                throw AuditError.badEval("--target-fpr: expected a rate in [0, 1), found \(calibrate.targetFPR)")
            }
            if let both = calibrate.files.first(where: { dataFiles.contains($0) }) {
                throw AuditError.badEval("\(both) is given both as --data and as --calibrate: calibration and test data must be disjoint")
            }
            calibrationItems = try EvalItem.load(paths: calibrate.files)
            guard !calibrationItems.isEmpty else {
                throw AuditError.badEval("the calibration files hold no items: \(calibrate.files.joined(separator: ", "))")
            }
            try EvalLeakage.checkDisjoint(calibration: calibrationItems, test: items)
        }
        let loaded = try LoadedModel.load(name, threads: threads, adapters: adapters)
        let rules = try AuditRuleSet(files: ruleFiles, model: loaded)
        try EvalLeakage.check(items: items, rules: rules.compiled, what: "data")
        if let calibrate {
            try EvalLeakage.check(items: calibrationItems, rules: rules.compiled, what: "calibration")
            for rule in rules.compiled.rules {
                let concepts = Set(rule.rule.tags)
                if !calibrationItems.contains(where: { !$0.positive && ($0.concept == EvalItem.benign || concepts.contains($0.concept)) }) {
                    throw ThresholdCalibration.noNegatives(rule: rule.id, files: calibrate.files.joined(separator: ", "))
                }
                if let why = ThresholdCalibration.unsupported(rule) {
                    throw AuditError.badEval("rule '\(rule.id)' (\(rule.resolved.file)): its threshold cannot be calibrated: \(why); "
                                             + "measure it without --calibrate, or calibrate a rule with one watched feature and aggregate max or mean")
                }
            }
        }
        let total = items.count + calibrationItems.count
        var elapsed = 0.0
        let scores = try score(items: items, rules: rules, loaded: loaded, chatFormat: chatFormat) { p in
            elapsed = p.seconds
            progress(EvalProgress(done: p.done, total: total, seconds: p.seconds))
        }
        let calibrationScores = try calibrate.map { _ in
            try score(items: calibrationItems, rules: rules, loaded: loaded, chatFormat: chatFormat) { [elapsed] p in
                progress(EvalProgress(done: items.count + p.done, total: total, seconds: elapsed + p.seconds))
            }
        }
        func files(_ paths: [String], _ list: [EvalItem]) throws -> [EvalResult.DataFile] {
            try paths.map { path in
                EvalResult.DataFile(path: path, sha256: try SHA256.hex(file: path), items: list.filter { $0.file == path }.count)
            }
        }
        let data = try files(dataFiles, items)
        var measured = results(items: items, scores: scores, resamples: resamples, unchecked: EvalLeakage.unchecked(rules: rules.compiled))
        if let calibrate, let calibrationScores {
            let chosen = try calibrations(calibration: calibrationItems, scores: calibrationScores, test: items, testScores: scores,
                                      compiled: rules.compiled, targetFPR: calibrate.targetFPR,
                                      data: try files(calibrate.files, calibrationItems))
            for i in measured.indices where i < chosen.count { measured[i].calibration = chosen[i] }
        }
        return EvalResult(
            schemaVersion: EvalResult.schemaVersion, probityVersion: version,
            model: try AuditReport.Model(loaded, loadedFrom: name), packs: rules.packDigests,
            ruleFiles: try AuditReport.FileDigest.of(ruleFiles),
            data: data, dataSHA256: EvalResult.dataDigest(data.map { ($0.path, $0.sha256) }),
            chatFormat: chatFormat, bootstrapResamples: resamples,
            rules: measured)
    }
}
