// A report's verdict and the joining of shard reports (docs/audits.md): findings are rules firing
// on baseline runs, counted per case; a report fails on a finding at or above its fail-on severity,
// a violated expectation, or an incomplete run.

import Foundation
import ProbityRules

extension AuditReport.Summary {
    /// Counts the findings of `cases` by severity and rule (every rule of `rules` listed, fired or not);
    /// `reconstruction` is the SAE packs' FVU pooled over the baseline runs of those cases.
    public init(cases: [AuditReport.Case], rules: [(id: String, severity: RuleSeverity)], failOn: RuleSeverity, complete: Bool,
                reconstruction: [AuditReport.PooledReconstruction]) {
        var bySeverity = Dictionary(uniqueKeysWithValues: RuleSeverity.allCases.map { ($0, 0) })
        var byRule = Dictionary(rules.map { ($0.id, 0) }, uniquingKeysWith: { a, _ in a })
        var failing = 0, expectationsFailed = 0, casesFailed = 0
        for c in cases {
            var caseFails = false
            for f in c.baseline.fired {
                bySeverity[f.severity, default: 0] += 1
                byRule[f.rule, default: 0] += 1
                if f.severity >= failOn { failing += 1; caseFails = true }
            }
            let violated = c.expectations.filter { !$0.passed }.count
            expectationsFailed += violated
            if violated > 0 { caseFails = true }
            if caseFails { casesFailed += 1 }
        }
        self.init(cases: cases.count, casesFailed: casesFailed, findings: byRule.values.reduce(0, +),
                  findingsBySeverity: bySeverity, findingsByRule: byRule, findingsAtOrAboveFailOn: failing,
                  expectationsFailed: expectationsFailed, passed: failing == 0 && expectationsFailed == 0 && complete,
                  reconstruction: reconstruction)
    }
}

extension AuditReport {
    /// Joins shard reports of one suite run into one report: cases in suite order, timings added up,
    /// the summary recomputed (the pooled FVU joined from the shards' sums, equal to one run's up
    /// to rounding). Every report must be a shard of the same suite, model, rules, packs
    /// and settings, and no case may appear twice.
    public static func merge(_ reports: [(path: String, report: AuditReport)]) throws -> AuditReport {
        guard let (firstPath, first) = reports.first else { throw AuditError.badMerge(path: "", reason: "no reports given") }
        func unsharded(_ s: Settings) -> Settings {
            var s = s
            s.shard = Shard(index: 1, count: 1)
            return s
        }
        var cases: [Case] = []
        var seen: Set<Int> = []
        var complete = true
        var caseTimes: [String: Double] = [:]
        var total = 0.0
        for (path, r) in reports {
            guard r.suite == first.suite, r.model == first.model, r.ruleFiles == first.ruleFiles, r.packs == first.packs,
                  unsharded(r.settings) == unsharded(first.settings) else {
                throw AuditError.badMerge(path: path, reason: "not a shard of the same suite, model, rules and settings as \(firstPath)")
            }
            for c in r.cases {
                guard seen.insert(c.index).inserted else {
                    throw AuditError.badMerge(path: path, reason: "case \(c.index) appears in more than one report")
                }
                cases.append(c)
            }
            if !r.complete { complete = false }
            total += r.timings.totalSeconds
            caseTimes.merge(r.timings.cases) { _, new in new }
        }
        cases.sort { $0.index < $1.index }
        var merged = first
        merged.cases = cases
        merged.complete = complete
        merged.settings = unsharded(first.settings)
        merged.timings = Timings(totalSeconds: total, cases: caseTimes)
        let pooled = try joinPooled(reports.map { ($0.path, $0.report.summary.reconstruction) })
        merged.summary = Summary(cases: cases, rules: first.rules.map { ($0.id, $0.severity) }, failOn: first.settings.failOn,
                                 complete: complete, reconstruction: pooled)
        return merged
    }
}
