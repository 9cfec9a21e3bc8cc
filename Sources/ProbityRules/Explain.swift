// `probity rules explain`: what a rule compiles to (features, hook points, thresholds, actions),
// in words, so a rule author can check the machine read the rule as they meant it.

import ProbityFeatures

extension ResolvedRule {
    /// A plain-text account of the rule, one fact per line.
    public var explanation: String {
        var lines: [String] = []
        lines.append("rule '\(rule.id)' (severity \(rule.severity.rawValue)), defined at \(rule.location)")
        lines.append("  \(rule.description)")
        if !rule.tags.isEmpty { lines.append("  tags: \(rule.tags.joined(separator: ", "))") }
        let combine = rule.watch.features.count == 1 ? "watches" : (rule.watch.combine == .any ? "watches any of" : "watches all of")
        lines.append("\(combine):")
        for f in watched { lines.append("  - \(f)\(f.maxActivation.map { " (max activation \(formatNumber($0)))" } ?? "")") }
        let detectorKind = type(of: rule.detector).kind
        lines.append("detects (\(detectorKind)): \(rule.detector)")
        for t in rule.detector.thresholds {
            guard case .relative(let k) = t else { continue }
            for f in watched {
                if let max = f.maxActivation { lines.append("  = \(formatNumber(k * max)) for \(f.shortName)") }
            }
        }
        if rule.watch.features.count > 1 {
            lines.append(rule.watch.combine == .any
                         ? "  one watched feature reaching its threshold suffices"
                         : "  every watched feature must reach its threshold (at the same token, or in the mean)")
        }
        if interventions.isEmpty {
            lines.append("intervenes: no (observes only)")
        } else {
            lines.append("intervenes:")
            for i in interventions {
                lines.append("  - \(i.intervention.action)")
                lines.append("      on: \(i.targets.map(\.shortName).joined(separator: ", "))")
                for level in i.intervention.action.values {
                    guard case .relative(let k) = level else { continue }
                    for f in i.targets {
                        if let max = f.maxActivation { lines.append("      = \(formatNumber(k * max)) for \(f.shortName)") }
                    }
                }
                lines.append("      when: \(i.triggerText)")
                let positions = i.intervention.positions == .all ? "every position" : "\(i.intervention.positions)"
                lines.append("      positions: \(positions)")
            }
        }
        lines.append(rule.stop ? "stops generation when it fires" : "does not stop generation")
        let fires = rule.tests.count { $0.expect == .fires }
        lines.append("tests: \(rule.tests.count) (\(fires) expect it to fire, \(rule.tests.count - fires) expect silence)")
        return lines.joined(separator: "\n")
    }
}

extension ResolvedIntervention {
    var triggerText: String {
        switch intervention.trigger {
        case .always: return "always (from the first token)"
        case .afterFire: return "from the first position where the rule fires"
        case .whileActive(_, let threshold):
            return "while \(whileFeature?.shortName ?? "the trigger feature") is at or above \(threshold.explained)"
        }
    }
}

extension ResolvedFeature {
    /// `latent 12 of 'pack'` / `direction 'x' of 'pack'`, without the hook.
    var shortName: String {
        switch target {
        case .latent(let i): return "latent \(i) of '\(pack)'"
        case .direction(let d): return "direction '\(d)' of '\(pack)'"
        case .probe(let p): return "probe '\(p)' of '\(pack)'"
        }
    }
}
