// `probity eval --steer`: intervention rules measured on behaviour (docs/eval.md "Steering,
// measured"). Each response is teacher-forced after its conversation, rendered as eval and audits
// render it; its log-likelihood is the sum of its tokens' log-probabilities. A matched pair prefers
// its label-1 response when that sum is the larger. The edits come from the rules' own compiled
// interventions, triggers and scopes, through the hooks an audit's steered run attaches
// (AuditRuleSet.instrument), each edit multiplied by the strength (Action.atStrength).

import Foundation
import ProbityFeatures
import ProbityLM
import ProbityRules
import ProbityTensor

/// Measures intervention rules on matched pairs and on fluency text.
public enum SteeringEvaluation {
    /// The strengths swept when none are given.
    public static let defaultStrengths: [Double] = [0, 0.5, 1, 2, 4, 8]
    /// The seed of the paired bootstrap.
    public static let bootstrapSeed: UInt64 = 0x5EED

    /// A matched pair: the same conversation with a label-1 and a label-0 response.
    public struct Pair: Sendable {
        public var id: String
        public var positive: EvalItem
        public var negative: EvalItem
    }

    /// The items grouped by `pair`, in the order of each pair's first item. Every item must have a
    /// pair of exactly one label-1 and one label-0 item of one concept and the same conversation.
    public static func pairs(_ items: [EvalItem]) throws -> [Pair] {
        var order: [String] = []
        var groups: [String: [EvalItem]] = [:]
        for item in items {
            guard let pair = item.pair, item.concept != EvalItem.benign else {
                throw AuditError.data(path: item.file, line: item.line, reason: item.concept == EvalItem.benign
                    ? "item '\(item.id)' is benign: --steer scores matched pairs (give benign files with --fluency)"
                    : "item '\(item.id)' has no 'pair': --steer scores matched pairs")
            }
            if groups[pair] == nil { order.append(pair) }
            groups[pair, default: []].append(item)
        }
        return try order.map { id in
            let group = groups[id] ?? []
            guard let first = group.first, let other = group.last, group.count == 2 else {
                let first = group.first
                throw AuditError.data(path: first?.file ?? "", line: first?.line ?? 0,
                                      reason: "pair '\(id)' has \(group.count) item(s): expected 2 (one label 1, one label 0)")
            }
            guard first.positive != other.positive else {
                throw AuditError.data(path: other.file, line: other.line,
                                      reason: "pair '\(id)': both items have label \(first.positive ? 1 : 0): expected one of each")
            }
            guard first.concept == other.concept, first.messages == other.messages else {
                throw AuditError.data(path: other.file, line: other.line,
                                      reason: "pair '\(id)': its items differ in \(first.concept != other.concept ? "concept" : "conversation"): a matched pair shares both")
            }
            return first.positive ? Pair(id: id, positive: first, negative: other) : Pair(id: id, positive: other, negative: first)
        }
    }

    /// The log-probability of each response token, teacher-forced after the prompt with `hooks`
    /// attached (nil: the model as it is), and the positions the recorder's interventions edited.
    /// Origins are as in an audit's steered pass: prompt tokens `prompt`, response tokens `generated`.
    public static func responseLogProbs(prompt: [Int], response: [Int], model: any LanguageModel,
                                        hooks: HookSet?) throws -> [Double] {
        let path = prompt + response
        let origins = [TokenOrigin](repeating: .prompt, count: prompt.count)
            + [TokenOrigin](repeating: .generated, count: response.count)
        let session = try model.makeSession(capacity: path.count)
        // Row j (from the prompt's last position on) is the distribution of response token j.
        let logits = try session.forward(path, origins: origins, hooks: hooks, logits: .from(prompt.count - 1))
        let vocab = model.info.vocabularySize
        precondition(logits.count == (response.count + 1) * vocab, "one row of logits per response token and one more")
        return response.enumerated().map { j, token in
            logits.withUnsafeBufferPointer { all in
                logProbability(of: token, in: UnsafeBufferPointer(rebasing: all[(j * vocab)..<((j + 1) * vocab)]))
            }
        }
    }

    /// The log-probabilities of each response's tokens after one prompt. With `sharePrompt` the
    /// prompt runs once with one set of hooks and each response continues from its cached positions
    /// (the session truncated back to the prompt between them); otherwise each response runs in a
    /// pass of its own with fresh hooks. Sharing gives the same edits when every edit depends only on
    /// its own position (`always` and `while` triggers; `all`, `prompt` or `response` positions), as
    /// no position's activations depend on a later one.
    static func logProbs(prompt: [Int], responses: [[Int]], model: any LanguageModel, sharePrompt: Bool,
                         hooks: () throws -> HookSet?) throws -> [[Double]] {
        guard sharePrompt else {
            return try responses.map { try responseLogProbs(prompt: prompt, response: $0, model: model, hooks: try hooks()) }
        }
        let vocab = model.info.vocabularySize
        let hookSet = try hooks()
        let session = try model.makeSession(capacity: prompt.count + (responses.map(\.count).max() ?? 0))
        let last = try session.forward(prompt, origins: [TokenOrigin](repeating: .prompt, count: prompt.count),
                                       hooks: hookSet, logits: .last)
        return try responses.map { response in
            session.truncate(to: prompt.count)
            // Row 0 (the prompt's last position) gives response token 0, row j + 1 token j + 1.
            let rows = last + (try session.forward(response, origins: [TokenOrigin](repeating: .generated, count: response.count),
                                                   hooks: hookSet, logits: .all))
            precondition(rows.count == (response.count + 1) * vocab, "one row of logits per response token and one more")
            return response.enumerated().map { j, token in
                rows.withUnsafeBufferPointer { all in
                    logProbability(of: token, in: UnsafeBufferPointer(rebasing: all[(j * vocab)..<((j + 1) * vocab)]))
                }
            }
        }
    }

    /// Whether every intervention of `rules` edits a position by what is at that position alone, so
    /// a shared prompt gives the same edits as a pass per response (`logProbs`).
    static func positionLocal(_ rules: [CompiledRule]) -> Bool {
        rules.allSatisfy { rule in
            rule.interventions.allSatisfy { iv in
                if case .afterFire = iv.when { return false }
                if case .last = iv.positions { return false }
                return true
            }
        }
    }

    /// log softmax(row)[token], in Double.
    static func logProbability(of token: Int, in row: UnsafeBufferPointer<Float>) -> Double {
        var m = -Double.infinity
        for v in row { m = max(m, Double(v)) }
        var sum = 0.0
        for v in row { sum += exp(Double(v) - m) }
        return Double(row[token]) - m - log(sum)
    }

    /// A 95% percentile interval of mean(steered − baseline) over pairs, resampling pairs with
    /// replacement `resamples` times from a fixed seed.
    public static func pairedDifferenceInterval(baseline: [Bool], steered: [Bool], resamples: Int,
                                                seed: UInt64 = bootstrapSeed) -> EvalResult.Interval? {
        let n = min(baseline.count, steered.count)
        guard n > 0, resamples > 0 else { return nil }
        let d = (0..<n).map { (steered[$0] ? 1 : 0) - (baseline[$0] ? 1 : 0) }
        var rng = SplitMix64(seed: seed)
        var values: [Double] = []
        values.reserveCapacity(resamples)
        for _ in 0..<resamples {
            var sum = 0
            for _ in 0..<n { sum += d[Int(rng.next() % UInt64(n))] }
            values.append(Double(sum) / Double(n))
        }
        values.sort()
        return EvalResult.Interval(low: DetectorMetrics.quantile(values, 0.025), high: DetectorMetrics.quantile(values, 0.975))
    }

    /// exp(Σ NLL / tokens); nil for no tokens.
    public static func perplexity(nll: Double, tokens: Int) -> Double? {
        tokens > 0 ? exp(nll / Double(tokens)) : nil
    }

    /// One item's prompt and response tokens, checked to fit the context and to have a response.
    static func tokens(_ item: EvalItem, loaded: LoadedModel, format: ChatFormat) throws -> (prompt: [Int], response: [Int]) {
        let t = try Evaluation.tokens(of: item, loaded: loaded, format: format)
        guard !t.response.isEmpty else {
            throw AuditError.data(path: item.file, line: item.line, reason: "item '\(item.id)': the response has no tokens to score")
        }
        let length = t.prompt.count + t.response.count
        guard length <= loaded.model.info.contextLength else {
            throw AuditError.data(path: item.file, line: item.line,
                                  reason: "item '\(item.id)' is \(length) tokens, longer than the model's context (\(loaded.model.info.contextLength))")
        }
        return t
    }

    /// Checks the strengths: at least one, each finite and ≥ 0, none twice.
    public static func check(strengths: [Double]) throws {
        guard !strengths.isEmpty else { throw AuditError.badEval("--strengths: give at least one strength") }
        if let bad = strengths.first(where: { !$0.isFinite || $0 < 0 }) {
            throw AuditError.badEval("--strengths: expected finite numbers ≥ 0, found \(bad)")
        }
        if let twice = strengths.enumerated().first(where: { i, s in strengths[..<i].contains(s) })?.element {
            throw AuditError.badEval("--strengths: \(twice) is given twice")
        }
    }

    /// Loads the model, the rules and the data, and measures the rules' interventions at each
    /// strength. `progress` is called after each item's passes.
    public static func run(model name: String, adapters: [AdapterRequest] = [], ruleFiles: [String], dataFiles: [String],
                           fluencyFiles: [String],
                           strengths: [Double] = defaultStrengths, chatFormat: String = "auto", version: String,
                           threads: Int? = nil, resamples: Int = 1000,
                           progress: (EvalProgress) -> Void = { _ in }) throws -> SteerEvalResult {
        guard !ruleFiles.isEmpty else { throw AuditError.badEval("no rule files to evaluate") }
        guard !dataFiles.isEmpty else { throw AuditError.badEval("no data: give --data FILE.jsonl with matched pairs") }
        guard resamples >= 1 else { throw AuditError.badEval("--resamples: expected at least 1, found \(resamples)") }
        try check(strengths: strengths)
        let pairs = try Self.pairs(try EvalItem.load(paths: dataFiles))
        guard !pairs.isEmpty else { throw AuditError.badEval("the data files hold no pairs: \(dataFiles.joined(separator: ", "))") }
        let fluencyItems = try EvalItem.load(paths: fluencyFiles)
        if !fluencyFiles.isEmpty && fluencyItems.isEmpty {
            throw AuditError.badEval("the fluency files hold no items: \(fluencyFiles.joined(separator: ", "))")
        }
        let loaded = try LoadedModel.load(name, threads: threads, adapters: adapters)
        let rules = try AuditRuleSet(files: ruleFiles, model: loaded)
        let steering = rules.compiled.rules.filter { !$0.interventions.isEmpty }
        guard !steering.isEmpty else {
            throw AuditError.badEval("--steer: none of the rules in \(ruleFiles.joined(separator: ", ")) has an intervention "
                                     + "(an 'intervene' item that edits activations): nothing to measure")
        }
        let format = try AuditRunner.chatFormat(chatFormat, of: loaded)
        let scaled = strengths.map { rules.atStrength($0) }
        let model = loaded.model

        // Per prompt: the summed log-probability of each response without hooks, then at each
        // strength, and the positions edited. The two responses of a pair share their prompt's
        // pass where the edits allow it (`positionLocal`).
        let share = positionLocal(rules.compiled.rules)
        var edits = [Int](repeating: 0, count: strengths.count), fluencyEdits = edits
        func measure(_ items: [EvalItem], edited: inout [Int]) throws -> [(tokens: Int, baseline: Double, steered: [Double])] {
            let tokenized = try items.map { try tokens($0, loaded: loaded, format: format) }
            guard let prompt = tokenized.first?.prompt else { return [] }
            let responses = tokenized.map(\.response)
            let baseline = try logProbs(prompt: prompt, responses: responses, model: model, sharePrompt: share) { nil }
            var steered: [[Double]] = []
            for (k, rules) in scaled.enumerated() {
                var recorders: [any RuleRecorder] = []
                let sums = try logProbs(prompt: prompt, responses: responses, model: model, sharePrompt: share) {
                    let recorder = try rules.instrument(model: model.info, steer: true)
                    recorders.append(recorder)
                    return recorder.hooks
                }.map { $0.reduce(0, +) }
                steered.append(sums)
                edited[k] += recorders.reduce(0) { $0 + $1.applications.values.reduce(0, +) }
            }
            return responses.indices.map { i in
                (responses[i].count, baseline[i].reduce(0, +), steered.map { $0[i] })
            }
        }
        let clock = ContinuousClock()
        let start = clock.now
        let total = 2 * pairs.count + fluencyItems.count
        var done = 0
        func tick(_ n: Int) {
            done += n
            progress(EvalProgress(done: done, total: total, seconds: (clock.now - start).seconds))
        }
        var scores: [SteerEvalResult.PairScore] = []
        for pair in pairs {
            let m = try measure([pair.positive, pair.negative], edited: &edits)
            guard m.count == 2 else { continue }
            let (p, n) = (m[0], m[1])
            tick(2)
            scores.append(SteerEvalResult.PairScore(
                pair: pair.id, concept: pair.positive.concept, positive: pair.positive.id, negative: pair.negative.id,
                positiveTokens: p.tokens, negativeTokens: n.tokens,
                baseline: .init(positive: p.baseline, negative: n.baseline),
                steered: zip(p.steered, n.steered).map { .init(positive: $0, negative: $1) }))
        }
        var fluency: [SteerEvalResult.FluencyScore] = []
        for item in fluencyItems {
            for m in try measure([item], edited: &fluencyEdits) {
                fluency.append(SteerEvalResult.FluencyScore(id: item.id, tokens: m.tokens, baselineNLL: -m.baseline,
                                                            steeredNLL: m.steered.map { -$0 }))
            }
            tick(1)
        }

        let fluencyTokens = fluency.reduce(0) { $0 + $1.tokens }
        let base = scores.map(\.baseline.prefersPositive)
        let basePerplexity = perplexity(nll: fluency.reduce(0) { $0 + $1.baselineNLL }, tokens: fluencyTokens)
        let baseRate = Double(base.filter { $0 }.count) / Double(scores.count)
        let rows = strengths.enumerated().map { k, s -> SteerEvalResult.StrengthResult in
            let steered = scores.map { $0.steered[k].prefersPositive }
            let rate = Double(steered.filter { $0 }.count) / Double(scores.count)
            let ppl = perplexity(nll: fluency.reduce(0) { $0 + $1.steeredNLL[k] }, tokens: fluencyTokens)
            return SteerEvalResult.StrengthResult(
                strength: s, rate: rate, preferred: steered.filter { $0 }.count, delta: rate - baseRate,
                deltaInterval: pairedDifferenceInterval(baseline: base, steered: steered, resamples: resamples)
                    ?? .init(low: 0, high: 0),
                perplexity: ppl, perplexityChange: ppl.flatMap { p in basePerplexity.map { p / $0 - 1 } },
                positionsEdited: edits[k], fluencyPositionsEdited: fluencyEdits[k])
        }
        func files(_ paths: [String], _ items: [EvalItem]) throws -> [EvalResult.DataFile] {
            try paths.map { path in
                EvalResult.DataFile(path: path, sha256: try SHA256.hex(file: path), items: items.filter { $0.file == path }.count)
            }
        }
        let data = try files(dataFiles, pairs.flatMap { [$0.positive, $0.negative] })
        let fluencyData = try files(fluencyFiles, fluencyItems)
        return SteerEvalResult(
            schemaVersion: SteerEvalResult.schemaVersion, probityVersion: version,
            model: try AuditReport.Model(loaded, loadedFrom: name), packs: rules.packDigests,
            ruleFiles: try AuditReport.FileDigest.of(ruleFiles),
            rules: steering.map { r in
                SteerEvalResult.SteeringRule(rule: r.id, file: r.resolved.file, interventions: r.interventions.map(describe))
            },
            data: data, dataSHA256: EvalResult.dataDigest(data.map { ($0.path, $0.sha256) }),
            fluency: fluencyData,
            fluencySHA256: fluencyData.isEmpty ? nil : EvalResult.dataDigest(fluencyData.map { ($0.path, $0.sha256) }),
            chatFormat: chatFormat, bootstrapResamples: resamples, bootstrapSeed: Int(bootstrapSeed),
            pairs: scores.count, concepts: Array(Set(scores.map(\.concept))).sorted(), fluencyTokens: fluencyTokens,
            baseline: .init(rate: baseRate, preferred: base.filter { $0 }.count, perplexity: basePerplexity),
            strengths: rows, items: scores, fluencyItems: fluency)
    }

    /// An intervention in words: `add -4 × the direction on caa/sycophancy, positions response, always`.
    static func describe(_ iv: CompiledIntervention) -> String {
        let positions: String
        switch iv.positions {
        case .all: positions = "all"
        case .prompt: positions = "prompt"
        case .generated: positions = "response"
        case .range(let r): positions = "\(r.lowerBound)..<\(r.upperBound)"
        case .last(let n): positions = "last \(n)"
        }
        let when: String
        switch iv.when {
        case .always: when = "always"
        case .afterFire: when = "after the rule fires"
        case .whileActive(let c): when = "while \(c.target.label) ≥ \(c.threshold)"
        }
        return "\(iv.action.description) on \(iv.target.label) at \(iv.target.point.name), positions \(positions), \(when)"
    }
}
