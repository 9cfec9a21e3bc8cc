// Audit reports (docs/audits.md, docs/report.schema.json): JSON with sorted keys, its summary and
// pass/fail, merging shard reports, and JUnit XML. Files are written atomically.

import Foundation
import ProbityRules

/// Builds, summarises, merges and writes audit reports.
public enum AuditReport {
    public static let schemaVersion = 1

    /// What the report says about where it came from.
    public struct Header {
        public var probityVersion: String
        public var suite: AuditSuite
        public var suiteSHA256: String
        public var modelName: String
        public var modelPath: String
        public var modelSHA256: String
        public var packs: [(name: String, path: String, sha256: String)]
        public var ruleFiles: [(path: String, sha256: String)]
        public var failOn: RuleSeverity
        public var shard: (index: Int, count: Int)

        public init(probityVersion: String, suite: AuditSuite, suiteSHA256: String, modelName: String, modelPath: String,
                    modelSHA256: String, packs: [(name: String, path: String, sha256: String)],
                    ruleFiles: [(path: String, sha256: String)], failOn: RuleSeverity, shard: (index: Int, count: Int)) {
            self.probityVersion = probityVersion
            self.suite = suite
            self.suiteSHA256 = suiteSHA256
            self.modelName = modelName
            self.modelPath = modelPath
            self.modelSHA256 = modelSHA256
            self.packs = packs
            self.ruleFiles = ruleFiles
            self.failOn = failOn
            self.shard = shard
        }
    }

    /// The report as a JSON object.
    public static func make(header h: Header, rules: [RuleInfo], results: [CaseResult], complete: Bool,
                            startedAt: Date, finishedAt: Date, tokenizer: (Int) -> String) -> [String: Any] {
        let s = h.suite.settings
        var report: [String: Any] = [
            "schema_version": schemaVersion,
            "probity_version": h.probityVersion,
            "complete": complete,
            "started_at": ISO8601DateFormatter().string(from: startedAt),
            "finished_at": ISO8601DateFormatter().string(from: finishedAt),
            "model": ["name": h.modelName, "sha256": h.modelSHA256, "path": h.suite.model == "default" ? "default" : h.modelPath],
            "packs": h.packs.map { ["name": $0.name, "path": $0.path, "sha256": $0.sha256] },
            "rule_files": h.ruleFiles.map { ["path": $0.path, "sha256": $0.sha256] },
            "rules": rules.map { ["id": $0.id, "severity": $0.severity.rawValue, "description": $0.description,
                                  "file": $0.file, "intervenes": $0.intervenes] },
            "suite": ["name": h.suite.name, "path": h.suite.path, "sha256": h.suiteSHA256, "cases": h.suite.cases.count],
            "settings": ["max_tokens": s.maxTokens, "temperature": s.temperature, "top_p": s.topP, "seed": Int(s.seed),
                         "chat_format": s.chatFormat, "fail_on": h.failOn.rawValue,
                         "shard": ["index": h.shard.index, "count": h.shard.count]],
            "timings": ["total_seconds": finishedAt.timeIntervalSince(startedAt),
                        "cases": Dictionary(uniqueKeysWithValues: results.map { ($0.auditCase.id, $0.seconds) })],
        ]
        let severities = Dictionary(uniqueKeysWithValues: rules.map { ($0.id, $0.severity) })
        let cases = results.map { caseObject($0, severities: severities, tokenizer: tokenizer) }
        report["cases"] = cases
        report["summary"] = summary(cases: cases, rules: rules.map { ($0.id, $0.severity) }, failOn: h.failOn, complete: complete)
        return report
    }

    static func outcomes(_ run: RunResult, tokens: [Int], severities: [String: RuleSeverity], tokenizer: (Int) -> String) -> [[String: Any]] {
        run.outcomes.filter(\.fired).map { o in
            ["rule": o.rule, "severity": severities[o.rule]?.rawValue ?? "info", "value": o.value,
             "positions": o.positions.map { p -> [String: Any] in
                 let token = p.position < tokens.count ? tokens[p.position] : -1
                 return ["position": p.position, "token": token, "piece": token >= 0 ? tokenizer(token) : "",
                         "activations": p.activations]
             }]
        }
    }

    static func runObject(_ run: RunResult, prompt: [Int], severities: [String: RuleSeverity], tokenizer: (Int) -> String) -> [String: Any] {
        let all = prompt + run.tokens
        var o: [String: Any] = ["text": run.text, "tokens": run.tokens.count, "finish_reason": run.finishReason.reportName,
                                "fired": outcomes(run, tokens: all, severities: severities, tokenizer: tokenizer)]
        if !run.features.isEmpty {
            o["features"] = run.features.keys.sorted().map { pos -> [String: Any] in
                ["position": pos, "packs": (run.features[pos] ?? []).map { f -> [String: Any] in
                    ["pack": f.pack, "fvu": f.fvu, "top": f.top.map { ["latent": $0.index, "activation": $0.activation] }]
                }]
            }
        }
        return o
    }

    static func mean(_ x: [Double]) -> Double { x.isEmpty ? 0 : x.reduce(0, +) / Double(x.count) }

    /// Token → mean delta over the generated positions (tokens with no positions are left out).
    static func meanDeltas(_ d: [String: [Double]]) -> [String: Double] {
        d.filter { !$0.value.isEmpty }.mapValues(mean)
    }

    /// Token → delta at the first generated position.
    static func firstDeltas(_ d: [String: [Double]]) -> [String: Double] {
        d.compactMapValues(\.first)
    }

    static func caseObject(_ r: CaseResult, severities: [String: RuleSeverity], tokenizer: (Int) -> String) -> [String: Any] {
        var o: [String: Any] = [
            "id": r.auditCase.id, "index": r.index, "prompt": r.prompt, "prompt_tokens": r.promptTokens.count,
            "location": r.auditCase.location.description,
            "baseline": runObject(r.baseline, prompt: r.promptTokens, severities: severities, tokenizer: tokenizer),
        ]
        let firedBaseline = Set(r.baseline.outcomes.filter(\.fired).map(\.rule))
        if let s = r.steered {
            o["steered"] = runObject(s, prompt: r.promptTokens, severities: severities, tokenizer: tokenizer)
            let firedSteered = Set(s.outcomes.filter(\.fired).map(\.rule))
            var effects: [String: Any] = [
                "text_changed": s.text != r.baseline.text,
                "interventions": s.applications.keys.sorted().map { id -> [String: Any] in
                    var o: [String: Any] = [
                        "rule": id, "positions_edited": s.applications[id] ?? 0,
                        "fired_baseline": firedBaseline.contains(id), "fires_after": firedSteered.contains(id),
                        "logit_deltas": meanDeltas(r.effects?.logitDeltas[id] ?? [:]),
                        "logit_deltas_first": firstDeltas(r.effects?.logitDeltas[id] ?? [:]),
                    ]
                    if let a = r.effects?.alone[id] {
                        o["alone"] = ["kl": a.kl, "kl_mean": mean(a.kl), "kl_max": a.kl.max() ?? 0,
                                      "top1_changed_fraction": a.top1ChangedFraction, "positions_edited": a.positionsEdited,
                                      "fires": a.fires, "logit_deltas": meanDeltas(a.logitDeltas),
                                      "logit_deltas_first": firstDeltas(a.logitDeltas)] as [String: Any]
                    }
                    return o
                },
            ]
            if let e = r.effects {
                effects["kl"] = e.kl
                effects["kl_mean"] = mean(e.kl)
                effects["kl_max"] = e.kl.max() ?? 0
                effects["top1_changed_fraction"] = e.top1ChangedFraction
            }
            o["effects"] = effects
        }
        var passed = true
        o["expectations"] = r.auditCase.expectations.map { e -> [String: Any] in
            let actual = firedBaseline.contains(e.rule)
            if actual != e.fires { passed = false }
            return ["rule": e.rule, "expected": e.fires ? "fires" : "silent", "actual": actual ? "fires" : "silent",
                    "passed": actual == e.fires, "location": e.location.description]
        }
        o["expectations_passed"] = passed
        return o
    }

    /// Counts findings (rules firing on the baseline run) by severity and rule; the report fails on
    /// a finding at or above `failOn`, a violated expectation, or an incomplete run.
    public static func summary(cases: [[String: Any]], rules: [(String, RuleSeverity)], failOn: RuleSeverity, complete: Bool) -> [String: Any] {
        var bySeverity = Dictionary(uniqueKeysWithValues: RuleSeverity.allCases.map { ($0.rawValue, 0) })
        var byRule = Dictionary(uniqueKeysWithValues: rules.map { ($0.0, 0) })
        var failing = 0, expectationsFailed = 0, casesFailed = 0
        for c in cases {
            var caseFails = false
            for f in (c["baseline"] as? [String: Any])?["fired"] as? [[String: Any]] ?? [] {
                guard let id = f["rule"] as? String, let sev = (f["severity"] as? String).flatMap(RuleSeverity.init(rawValue:)) else { continue }
                bySeverity[sev.rawValue, default: 0] += 1
                byRule[id, default: 0] += 1
                if sev >= failOn { failing += 1; caseFails = true }
            }
            let violated = (c["expectations"] as? [[String: Any]] ?? []).filter { ($0["passed"] as? Bool) == false }.count
            expectationsFailed += violated
            if violated > 0 { caseFails = true }
            if caseFails { casesFailed += 1 }
        }
        return ["cases": cases.count, "cases_failed": casesFailed, "findings": byRule.values.reduce(0, +),
                "findings_by_severity": bySeverity, "findings_by_rule": byRule, "findings_at_or_above_fail_on": failing,
                "expectations_failed": expectationsFailed,
                "passed": failing == 0 && expectationsFailed == 0 && complete]
    }

    /// Joins shard reports of one suite run into one report: cases in suite order, summary recomputed.
    public static func merge(_ reports: [(path: String, report: [String: Any])]) throws -> [String: Any] {
        guard let (firstPath, first) = reports.first else { throw AuditError.badMerge(path: "", reason: "no reports given") }
        func identity(_ r: [String: Any]) -> String {
            var settings = r["settings"] as? [String: Any] ?? [:]
            settings["shard"] = nil
            let parts: [Any] = [r["suite"] ?? "", r["model"] ?? "", r["rule_files"] ?? "", r["packs"] ?? "", settings]
            return (try? JSONSerialization.data(withJSONObject: parts, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? ""
        }
        let id = identity(first)
        var cases: [[String: Any]] = []
        var seen: Set<Int> = []
        var complete = true
        var caseTimes: [String: Any] = [:]
        var total = 0.0
        for (path, r) in reports {
            guard (r["schema_version"] as? Int) == schemaVersion else {
                throw AuditError.badMerge(path: path, reason: "schema_version is not \(schemaVersion)")
            }
            guard identity(r) == id else {
                throw AuditError.badMerge(path: path, reason: "not a shard of the same suite, model, rules and settings as \(firstPath)")
            }
            for c in r["cases"] as? [[String: Any]] ?? [] {
                guard let i = c["index"] as? Int else { throw AuditError.badMerge(path: path, reason: "a case has no index") }
                guard seen.insert(i).inserted else { throw AuditError.badMerge(path: path, reason: "case \(i) appears in more than one report") }
                cases.append(c)
            }
            if (r["complete"] as? Bool) != true { complete = false }
            let t = r["timings"] as? [String: Any] ?? [:]
            total += t["total_seconds"] as? Double ?? 0
            for (k, v) in t["cases"] as? [String: Any] ?? [:] { caseTimes[k] = v }
        }
        cases.sort { ($0["index"] as? Int ?? 0) < ($1["index"] as? Int ?? 0) }
        var merged = first
        merged["cases"] = cases
        merged["complete"] = complete
        var settings = first["settings"] as? [String: Any] ?? [:]
        settings["shard"] = ["index": 1, "count": 1]
        merged["settings"] = settings
        merged["timings"] = ["total_seconds": total, "cases": caseTimes]
        let rules = (first["rules"] as? [[String: Any]] ?? []).compactMap { r -> (String, RuleSeverity)? in
            guard let id = r["id"] as? String, let s = (r["severity"] as? String).flatMap(RuleSeverity.init(rawValue:)) else { return nil }
            return (id, s)
        }
        let failOn = (settings["fail_on"] as? String).flatMap(RuleSeverity.init(rawValue:)) ?? .high
        merged["summary"] = summary(cases: cases, rules: rules, failOn: failOn, complete: complete)
        return merged
    }

    /// Reads a report written by `write`.
    public static func read(path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else { throw AuditError.cannotRead(path: path, reason: "no such file") }
        guard let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw AuditError.cannotRead(path: path, reason: "not a JSON object")
        }
        return o
    }

    /// The JSON text: sorted keys, indented, with a final newline.
    public static func json(_ report: [String: Any]) throws -> Data {
        var data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        data.append(0x0A)
        return data
    }

    /// Writes `data` to `path` through a temporary file and a rename, creating the directory.
    public static func writeAtomically(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url, options: .atomic)
    }

    /// JUnit XML: one testcase per case; a failure per violated expectation and per finding at or
    /// above the report's fail-on severity.
    public static func junit(_ report: [String: Any]) -> String {
        let suite = (report["suite"] as? [String: Any])?["name"] as? String ?? "audit"
        let failOn = ((report["settings"] as? [String: Any])?["fail_on"] as? String).flatMap(RuleSeverity.init(rawValue:)) ?? .high
        let times = (report["timings"] as? [String: Any])?["cases"] as? [String: Any] ?? [:]
        var body = ""
        var failures = 0
        let cases = report["cases"] as? [[String: Any]] ?? []
        for c in cases {
            let id = c["id"] as? String ?? "?"
            var problems: [String] = []
            for e in c["expectations"] as? [[String: Any]] ?? [] where (e["passed"] as? Bool) == false {
                problems.append("expected rule \(e["rule"] as? String ?? "?") to be \(e["expected"] as? String ?? "?"), but it \(e["actual"] as? String == "fires" ? "fired" : "was silent") (\(e["location"] as? String ?? ""))")
            }
            for f in (c["baseline"] as? [String: Any])?["fired"] as? [[String: Any]] ?? [] {
                guard let sev = (f["severity"] as? String).flatMap(RuleSeverity.init(rawValue:)), sev >= failOn else { continue }
                problems.append("rule \(f["rule"] as? String ?? "?") fired (severity \(sev.rawValue), at or above \(failOn.rawValue))")
            }
            let time = String(format: "%.3f", times[id] as? Double ?? 0)
            body += "    <testcase classname=\"\(xml(suite))\" name=\"\(xml(id))\" time=\"\(time)\""
            if problems.isEmpty { body += "/>\n"; continue }
            failures += 1
            body += ">\n      <failure message=\"\(xml(problems[0]))\">\(xml(problems.joined(separator: "\n")))</failure>\n    </testcase>\n"
        }
        let total = String(format: "%.3f", (report["timings"] as? [String: Any])?["total_seconds"] as? Double ?? 0)
        return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"
            + "  <testsuite name=\"\(xml(suite))\" tests=\"\(cases.count)\" failures=\"\(failures)\" errors=\"0\" time=\"\(total)\">\n"
            + body + "  </testsuite>\n</testsuites>\n"
    }

    static func xml(_ s: String) -> String {
        var out = ""
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "\n": out += "&#10;"
            default:
                // XML 1.0 forbids most control characters even as references.
                if ch.value < 0x20 && ch != "\t" { out += "?" } else { out.unicodeScalars.append(ch) }
            }
        }
        return out
    }
}
