// Choosing a rule's threshold on calibration data (docs/eval.md, "Calibrating a threshold"): the
// threshold at which at most a target fraction of the calibration negatives fire, as the engine
// decides firing (the aggregate, in float32, at or above the threshold), then reported on disjoint
// test data beside the rule's shipped threshold.

import ProbityRules

/// The threshold choice, on scores as the runtime compares them.
public enum ThresholdCalibration {
    /// The threshold at which at most k = ⌊`targetFPR`·n⌋ of the n `negatives` fire, where an item fires
    /// when its score is at or above the threshold (float32 `>=`, as `RuleRun` judges `max` and
    /// `mean`) and a nil score (never judged) never fires. With k = ⌊targetFPR·n⌋ and m the
    /// (k+1)-th highest negative score, counting tied scores one by one: the midpoint of m and the
    /// next higher distinct negative score, rounded to float32 and kept strictly above m (so every
    /// score equal to m stays below it: with ties at m fewer than k fire); with no higher negative,
    /// the next float32 above m. When no more than k negatives can fire at all, the lowest score of
    /// `all` (every judged item fires). Nil when nothing was judged.
    public static func choose(negatives: [Float?], all: [Float?], targetFPR: Double) -> Float? {
        // 1e-9 absorbs the binary rounding of products such as 0.29 × 100 = 28.999999999999996.
        let allowed = Int((targetFPR * Double(negatives.count) + 1e-9).rounded(.down))
        let judged = negatives.compactMap { $0 }.sorted(by: >)
        guard judged.count > allowed else { return all.compactMap { $0 }.min() }
        let m = judged[allowed]
        guard let above = judged.last(where: { $0 > m }) else { return m.nextUp }
        let mid = Float((Double(m) + Double(above)) / 2)
        return mid > m ? min(mid, above) : m.nextUp
    }

    /// Whether a score fires at `threshold`, as the engine decides for `max` and `mean`.
    public static func fires(_ score: Float?, at threshold: Float) -> Bool { score.map { $0 >= threshold } ?? false }

    /// The error for a rule whose calibration data hold no negative: no label-0 item of its concepts
    /// and no benign item.
    static func noNegatives(rule: String, files: String) -> AuditError {
        .badEval("rule '\(rule)': the calibration data (\(files)) hold none of its negatives (label-0 items of its concepts, "
                 + "or benign items): nothing to choose its threshold on")
    }

    /// Why a rule's threshold cannot be calibrated from its scores, or nil when it can: its score
    /// must be the one quantity compared with one threshold (one watched feature, aggregate `max` or
    /// `mean`); a `count` rule's score is a count of positions over the threshold, which moves with it.
    public static func unsupported(_ rule: CompiledRule) -> String? {
        if rule.features.count != 1 {
            return "it watches \(rule.features.count) features, each with its own threshold"
        }
        if rule.detector.aggregate == .count {
            return "its aggregate is 'count': the score counts positions over the threshold, so it changes with the threshold"
        }
        return nil
    }
}

extension Evaluation {
    /// Per rule (in `scores.rules` order): the calibrated threshold chosen on `calibration` items and
    /// the rates it gives there and on the `test` items; the shipped thresholds are the compiled ones.
    /// A rule without a calibration negative, or never judged on any calibration item, is bad input.
    static func calibrations(calibration items: [EvalItem], scores calScores: Scores, test: [EvalItem], testScores: Scores,
                             compiled: CompiledRules, targetFPR: Double, data: [EvalResult.DataFile]) throws -> [EvalResult.Calibration?] {
        let concepts = Set(test.map(\.concept)).union(items.map(\.concept))
        let digest = EvalResult.dataDigest(data.map { ($0.path, $0.sha256) })
        return try calScores.rules.enumerated().map { r, info in
            guard r < compiled.rules.count, let feature = compiled.rules[r].features.first else { return nil }
            let mine = Set(calScores.tags[info.id] ?? []).intersection(concepts).subtracting([EvalItem.benign])
            func rows(_ list: [EvalItem], _ s: Scores) -> [(item: EvalItem, score: Float?)] {
                list.enumerated().compactMap { i, item in
                    guard item.concept == EvalItem.benign || mine.contains(item.concept),
                          i < s.scores.count, r < s.scores[i].count else { return nil }
                    let x = s.scores[i][r]
                    return (item, x.judged ? Float(x.value) : nil)
                }
            }
            let cal = rows(items, calScores)
            let negatives = cal.filter { !$0.item.positive }.map(\.score)
            let files = data.map(\.path).joined(separator: ", ")
            guard !negatives.isEmpty else {
                throw ThresholdCalibration.noNegatives(rule: info.id, files: files)
            }
            guard let t = ThresholdCalibration.choose(negatives: negatives, all: cal.map(\.score), targetFPR: targetFPR) else {
                throw AuditError.badEval("rule '\(info.id)' was never judged on a calibration item (each response is shorter than its min_tokens): "
                                         + "nothing to choose its threshold on")
            }
            func rates(_ list: [(item: EvalItem, score: Float?)]) -> EvalResult.Rates {
                func rate(_ f: ((item: EvalItem, score: Float?)) -> Bool) -> Double? {
                    DetectorMetrics.rate(list.filter(f).map { ThresholdCalibration.fires($0.score, at: t) })
                }
                return EvalResult.Rates(tpr: rate { $0.item.positive },
                                        fpr: rate { !$0.item.positive && $0.item.concept != EvalItem.benign },
                                        benignFPR: rate { $0.item.concept == EvalItem.benign })
            }
            let calibrationRates = rates(cal)
            return EvalResult.Calibration(
                targetFPR: targetFPR, threshold: Double(t), shippedThreshold: Double(feature.threshold),
                data: data, dataSHA256: digest,
                positives: cal.count { $0.item.positive }, negatives: cal.count { !$0.item.positive && $0.item.concept != EvalItem.benign },
                benign: cal.count { $0.item.concept == EvalItem.benign },
                negativesFPR: DetectorMetrics.rate(negatives.map { ThresholdCalibration.fires($0, at: t) }),
                calibration: calibrationRates, test: rates(rows(test, testScores)),
                items: cal.map { row in
                    EvalResult.CalibrationItem(id: row.item.id, label: row.item.positive ? 1 : 0, concept: row.item.concept,
                                               score: row.score.map(Double.init), fires: ThresholdCalibration.fires(row.score, at: t))
                })
        }
    }
}
