// The two ways `features train-probe` learns: from pooled responses (one row per item, --pool mean
// or last) or from single tokens (--pool tokens, read as the maximum over the response). Each gives
// the cross-validation cells and how to refit and score a cell, so the command's table, threshold
// and pack are the same code for both.

import ProbityAudit
import ProbityLM
import ProbityTraining

/// The candidates a train-probe run cross-validated, and how to fit and score one.
struct ProbeRun {
    /// Per candidate: its name in the tables, its hook point (an index into the points) and its
    /// pooling (an index into `poolings`), and whether the probe may be written for it.
    var names: [String]
    var point: [Int]
    var pooling: [Int]
    var writable: [Bool]
    var poolings: [String]
    var cells: [ProbeCrossValidation.Cell]
    /// Fits candidate c at λ on every training item, or on those outside one fold.
    var fit: (_ candidate: Int, _ l2: Double, _ heldOut: Int?) throws -> LogisticRegression
    /// An item's score under a model, as the cross-validation scored it.
    var score: (_ model: LogisticRegression, _ candidate: Int, _ item: Int) -> Double
    /// What the rule reading the probe scores on a response's token rows, when a rule reads it so.
    var ruleStatistic: ((LogisticRegression, [[Float]]) -> Double)?
    var statisticText: String
    /// The tokens learned from (token-level runs).
    var trainingTokens: Int = 0
}

extension FeaturesTrainProbe {
    /// One row per item: the response pooled per `pools`, one candidate per pooling and hook point.
    func pooledRun(labels: [Bool], points: [HookPoint], pools: [ReplyPooling], grid: [Double], foldOf: [Int],
                   collected: ReplyActivations, note: (String) -> Void) throws -> ProbeRun {
        let slots = pools.indices.flatMap { q in points.indices.map { (pool: q, point: $0) } }
        let candidates = slots.map { s in collected.pooled.map { $0[s.pool][s.point] } }
        let names = slots.map { s in points[s.point].name + (pools.count > 1 ? " (\(pools[s.pool].rawValue))" : "") }
        let cells = try ProbeCrossValidation.run(candidates: candidates, labels: labels, folds: foldOf, k: folds, l2s: grid) { c in
            note("train-probe: cross-validated \(names[c])")
        }
        // The probe is written for the first pooling listed (the one its rules read: a rule's mean
        // over the response reads `mean`; no rule reads a reply's last token alone), the others
        // cross-validated beside it for comparison.
        let meanRule: ((LogisticRegression, [[Float]]) -> Double)? = pools.first == .mean ? { m, rows in
            // The highest running mean of the per-token logits: what a rule with scope response and
            // aggregate mean judges, position by position.
            var sum = 0.0, peak = -Double.infinity
            for (k, r) in rows.enumerated() {
                sum += m.logit(r.map(Double.init))
                peak = max(peak, sum / Double(k + 1))
            }
            return peak
        } : nil
        return ProbeRun(
            names: names, point: slots.map(\.point), pooling: slots.map(\.pool), writable: slots.map { $0.pool == 0 },
            poolings: pools.map(\.rawValue), cells: cells,
            fit: { c, l2, heldOut in
                let train = labels.indices.filter { i in heldOut.map { foldOf[i] != $0 } ?? true }
                return try LogisticRegression.fit(rows: train.map { candidates[c][$0] }, labels: train.map { labels[$0] }, l2: l2)
            },
            score: { m, c, i in m.logit(candidates[c][i]) },
            ruleStatistic: meanRule,
            statisticText: "the highest running mean of the per-token logit over the response (a rule with scope response, aggregate mean)")
    }

    /// One row per training token (`TokenProbeLabels`), one candidate per hook point; items scored
    /// by their maximum logit over the response.
    func tokenRun(items: [EvalItem], labels: [Bool], target: String, points: [HookPoint], grid: [Double], foldOf: [Int],
                  collected: ReplyActivations, loaded: LoadedModel, note: (String) -> Void) throws -> ProbeRun {
        let responses = try Evaluation.responseTokens(items: items, loaded: loaded, chatFormat: chatFormatOption.chatFormat ?? "auto")
        // A positive's partner: the label-0 item of the same concept and pair.
        var negativeOfPair: [String: Int] = [:]
        for (i, item) in items.enumerated() where item.concept == target && !item.positive {
            if let pair = item.pair { negativeOfPair[pair] = i }
        }
        let partner = items.indices.map { i -> Int? in labels[i] ? items[i].pair.flatMap { negativeOfPair[$0] } : nil }
        let training = TokenProbeLabels.rows(responses: responses, positive: labels, partner: partner)
        let nPositive = training.count { $0.label }
        guard nPositive > 0 else {
            throw ProbeTrainingInput.concept("--pool tokens: no positive token: every positive's response equals its pair's")
        }
        var candidates: [[[[Double]]]] = []
        for k in points.indices {
            candidates.append(try items.indices.map { i in
                guard let rows = collected.tokens[i]?[k], rows.count == responses[i].count else {
                    throw ProbeTrainingInput.concept("item '\(items[i].id)': \(collected.tokens[i]?[k].count ?? 0) activation rows for \(responses[i].count) response tokens")
                }
                return rows.map { $0.map(Double.init) }
            })
        }
        note("train-probe: \(training.count) training tokens (\(nPositive) positive) from \(items.count) items")
        let names = points.map { $0.name + " (tokens)" }
        let cells = try ProbeCrossValidation.runTokens(candidates: candidates, training: training, itemLabels: labels,
                                                       folds: foldOf, k: folds, l2s: grid) { c in
            note("train-probe: cross-validated \(names[c])")
        }
        return ProbeRun(
            names: names, point: Array(points.indices), pooling: points.map { _ in 0 }, writable: points.map { _ in true },
            poolings: ["tokens"], cells: cells,
            fit: { c, l2, heldOut in
                let train = training.filter { r in heldOut.map { foldOf[r.item] != $0 } ?? true }
                return try LogisticRegression.fit(rows: train.map { candidates[c][$0.item][$0.position] }, labels: train.map(\.label),
                                                  weights: train.map(\.weight), l2: l2)
            },
            score: { m, c, i in m.maxLogit(candidates[c][i]) },
            ruleStatistic: { m, rows in rows.reduce(-Double.infinity) { max($0, m.logit($1.map(Double.init))) } },
            statisticText: "the maximum of the per-token logit over the response (a rule with scope response, aggregate max)",
            trainingTokens: training.count)
    }
}
