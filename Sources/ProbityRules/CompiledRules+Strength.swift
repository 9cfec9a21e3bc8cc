// Compiled rules at a strength (`probity eval --steer`, docs/eval.md "Steering, measured"): the
// same rules, features, positions and triggers, every intervention's edit multiplied by s
// (Action.atStrength), so a dose-response curve runs the rules as an audit's steered run does.

import ProbityFeatures

extension CompiledRules {
    /// These rules with each intervention's action at strength `s`; s = 1 leaves them as written.
    public func atStrength(_ s: Double) -> CompiledRules {
        let scaled = rules.map { rule -> CompiledRule in
            var rule = rule
            rule.interventions = rule.interventions.map { iv in
                var iv = iv
                iv.action = iv.action.atStrength(s)
                return iv
            }
            return rule
        }
        return CompiledRules(rules: scaled, packs: packs, warnings: warnings, model: model)
    }
}
