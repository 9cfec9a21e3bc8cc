// Rules judged at thresholds chosen at run time (an audit's `calibrate:` block, docs/audits.md):
// the same compiled rules with some single-feature rules' detection levels replaced.

extension CompiledRules {
    /// The same rules with the watched feature of each rule in `thresholds` (by id) detecting at the
    /// given level. Only single-feature rules take one (ThresholdCalibration.unsupported says why
    /// others cannot); ids not among the rules are ignored, as are rules with several features.
    public func withThresholds(_ thresholds: [String: Float]) -> CompiledRules {
        let changed = rules.map { rule -> CompiledRule in
            guard let t = thresholds[rule.id], rule.features.count == 1 else { return rule }
            var rule = rule
            rule.features[0].threshold = t
            return rule
        }
        return CompiledRules(rules: changed, packs: packs, warnings: warnings, model: model)
    }
}
