// Which prompt positions a steered run may edit: the positions before the first are computed
// alike by every run of a sequence (baseline, steered, one rule alone), so runs may share them.

import ProbityLM

extension CompiledRules {
    /// The first position of a prompt of `length` tokens that an intervention may edit when the
    /// prompt runs as one step before any generated token; nil when none may. It is 0 as well for an
    /// `after_fire` edit whose rule reads a feature at a hook point after the edit's: its gate
    /// opens for a step only from detection in earlier steps, so the prompt must run as one call.
    public func firstEditablePromptPosition(length: Int) -> Int? {
        let order = model.hookPoints
        func rank(_ p: HookPoint) -> Int { order.firstIndex(of: p) ?? order.count }
        var first: Int?
        for r in rules {
            for iv in r.interventions {
                guard var p = iv.positions.firstPromptPosition(length: length) else { continue }
                if case .afterFire = iv.when, r.features.contains(where: { rank($0.target.point) > rank(iv.target.point) }) {
                    p = 0
                }
                first = min(first ?? p, p)
            }
        }
        return first
    }
}
