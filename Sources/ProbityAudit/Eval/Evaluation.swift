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
        /// `scores[i][r]`: item i under rule r.
        public var scores: [[(value: Double, fires: Bool)]]
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
        var out: [[(value: Double, fires: Bool)]] = []
        out.reserveCapacity(items.count)
        try teacherForce(items: items, loaded: loaded, chatFormat: chatFormat, progress: progress) { _, length in
            let recorder = try rules.instrument(model: loaded.model.info, steer: false)
            return (recorder.hooks, {
                out.append(recorder.evaluate(length: length).map { ($0.value, $0.fired) })
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
    public static func results(items: [EvalItem], scores: Scores, resamples: Int = 1000) -> [EvalResult.RuleResult] {
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
                items: rows)
        }
    }

    /// Loads the model, the rules and the data, scores every item, and returns the measured result.
    public static func run(model name: String, ruleFiles: [String], dataFiles: [String], chatFormat: String = "auto",
                           version: String, threads: Int? = nil, resamples: Int = 1000,
                           progress: (EvalProgress) -> Void = { _ in }) throws -> EvalResult {
        guard !ruleFiles.isEmpty else { throw AuditError.badEval("no rule files to evaluate") }
        guard !dataFiles.isEmpty else { throw AuditError.badEval("no data: give --data FILE.jsonl") }
        let items = try EvalItem.load(paths: dataFiles)
        guard !items.isEmpty else { throw AuditError.badEval("the data files hold no items: \(dataFiles.joined(separator: ", "))") }
        let loaded = try LoadedModel.load(name, threads: threads)
        let rules = try AuditRuleSet(files: ruleFiles, model: loaded)
        let scores = try score(items: items, rules: rules, loaded: loaded, chatFormat: chatFormat, progress: progress)
        let data = try dataFiles.map { path in
            EvalResult.DataFile(path: path, sha256: try SHA256.hex(file: path), items: items.filter { $0.file == path }.count)
        }
        return EvalResult(
            schemaVersion: EvalResult.schemaVersion, probityVersion: version,
            model: try AuditReport.Model(loaded, loadedFrom: name), packs: rules.packDigests,
            ruleFiles: try AuditReport.FileDigest.of(ruleFiles),
            data: data, dataSHA256: EvalResult.dataDigest(data.map { ($0.path, $0.sha256) }),
            chatFormat: chatFormat, bootstrapResamples: resamples,
            rules: results(items: items, scores: scores, resamples: resamples))
    }
}
