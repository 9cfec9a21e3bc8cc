// A suite's `calibrate:` block at run time (docs/audits.md, "Calibrating on the audited model"): the
// audited model answers the calibration requests unsteered, with the suite's generation settings,
// each named rule is judged on every answer as in a case's baseline run, and its threshold becomes
// the one `probity eval --calibrate` would choose on those scores (ThresholdCalibration.choose).

import ProbityRules

extension Audit {
    /// Thresholds for the rules `calibration` names, chosen on `runner`'s model's own answers; nil
    /// when interrupted. `progress` gets the calibration case about to run.
    static func calibrate(_ calibration: AuditCalibration, rules: AuditRuleSet, runner: AuditRunner, width: Int,
                          interrupted: () -> Bool, progress: (String) -> Void) throws -> [String: RuleCalibration]? {
        var targets: [(id: String, index: Int, shipped: Float)] = []
        for ref in calibration.rules {
            guard let index = rules.compiled.rules.firstIndex(where: { $0.id == ref.id }) else {
                throw AuditError.unknownRule(ref.location, id: ref.id, known: rules.infos.map(\.id).sorted())
            }
            let rule = rules.compiled.rules[index]
            if let why = ThresholdCalibration.unsupported(rule) {
                throw AuditError.invalid(ref.location, message: "calibrate: rule '\(ref.id)' (\(rule.resolved.file)): its threshold cannot be calibrated: \(why)")
            }
            guard let feature = rule.features.first else { continue }
            targets.append((ref.id, index, feature.threshold))
        }
        var scores: [[Float?]] = Array(repeating: [], count: targets.count)
        guard let runs = try runner.baselines(calibration.cases, width: width, interrupted: interrupted,
                                              started: { progress($0.id) }) else { return nil }
        for run in runs {
            for (t, target) in targets.enumerated() {
                let outcome = run.outcomes.first { $0.rule == target.id }
                scores[t].append(outcome.flatMap { $0.judged ? Float($0.value) : nil })
            }
        }
        var out: [String: RuleCalibration] = [:]
        for (t, target) in targets.enumerated() {
            guard let threshold = ThresholdCalibration.choose(negatives: scores[t], all: scores[t], targetFPR: calibration.targetFPR) else {
                throw AuditError.invalid(calibration.rules[t].location,
                                         message: "calibrate: rule '\(target.id)' was never judged on a calibration answer (each is shorter than its min_tokens): nothing to choose its threshold on")
            }
            let answers = zip(calibration.cases, scores[t]).map { c, s in
                RuleCalibration.Answer(id: c.id, score: s.map(Double.init), fires: ThresholdCalibration.fires(s, at: threshold))
            }
            out[target.id] = RuleCalibration(threshold: Double(threshold), shippedThreshold: Double(target.shipped),
                                             targetFPR: calibration.targetFPR, answers: answers)
        }
        return out
    }
}
