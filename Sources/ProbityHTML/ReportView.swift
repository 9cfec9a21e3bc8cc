// An audit report as its page shows it: plain values, every number already formatted, so the
// template only places them (and escapes every one). Built from the report alone; latent names come
// from the SAE packs' labels when the caller has them.

import Foundation
import ProbityAudit
import ProbityRules

/// What the report page shows, in the template's terms.
struct ReportView {
    struct Pair {
        let key: String, value: String
        /// The value in full where `value` shortens it (a digest), for the element's title.
        let full: String, hasFull: Bool
        init(key: String, value: String, full: String = "") {
            self.key = key
            self.value = value
            self.full = full
            hasFull = !full.isEmpty
        }
    }
    struct PackRow { let name: String; let path: String; let sha256: String; let digest: String }
    /// A rule's measured validity (from its `validity` metadata), every number formatted.
    struct ValidityRow {
        let id: String, measured: Bool, auroc: String, tpr: String, fpr: String, benignFPR: String, n: String
        let data: String, dataDigest: String
    }
    struct SeverityRow { let severity: String; let count: String; let atOrAboveFailOn: Bool }
    struct RuleRow {
        let id: String, severity: String, count: String, fired: Bool, trust: String, description: String
        let location: String, href: String, intervenes: Bool
    }
    struct Finding {
        let caseID: String, caseAnchor: String, rule: String, severity: String, rank: String
        let value: String, valueSort: String, positions: String, location: String, href: String
    }
    struct Option { let value: String; let label: String; let selected: Bool }
    struct Expectation { let caseID: String; let caseAnchor: String; let rule: String; let expected: String; let actual: String; let location: String }

    let title: String
    let verdict: String
    let passed: Bool
    let complete: Bool
    let suite: String
    let suiteLocation: String
    let generatedBy: String
    let model: [Pair]
    let packs: [PackRow]
    let settings: [Pair]
    let counts: [Pair]
    let findingsCount: String
    let severities: [SeverityRow]
    let rules: [RuleRow]
    let validity: [ValidityRow]
    let validityMeasured: String
    let findings: [Finding]
    let hasFindings: Bool
    let severityOptions: [Option]
    let ruleOptions: [Option]
    let failedExpectations: [Expectation]
    let hasFailedExpectations: Bool
    let reconstruction: [Pair]
    let hasReconstruction: Bool
    let cases: [CaseView]
}

/// Where links from the page point: paths in the report are relative to the directory the audit ran
/// in; the page may be written elsewhere.
struct LinkBase {
    /// The prefix that turns a path relative to the audit's directory into one relative to the page.
    let prefix: String

    /// For a page written to `page` by a process whose working directory is `workingDirectory`.
    init(page: String, workingDirectory: String) {
        let cwd = URL(fileURLWithPath: workingDirectory).standardizedFileURL.pathComponents
        let dir = URL(fileURLWithPath: page, relativeTo: URL(fileURLWithPath: workingDirectory, isDirectory: true))
            .standardizedFileURL.deletingLastPathComponent().pathComponents
        var common = 0
        while common < cwd.count && common < dir.count && cwd[common] == dir[common] { common += 1 }
        let up = Array(repeating: "..", count: dir.count - common)
        let down = Array(cwd.dropFirst(common))
        let joined = (up + down).joined(separator: "/")
        prefix = joined.isEmpty ? "" : joined + "/"
    }

    /// A link to `path` (relative to the audit's directory, or absolute) from the page, its
    /// characters other than unreserved ones and "/" percent-encoded (so "#", "?", "%", ":" and
    /// spaces in a file name stay part of the path); `line`, when given, as a `#L<line>` fragment,
    /// the form code hosts and editors' previews scroll to.
    func href(_ path: String, line: Int? = nil) -> String {
        let fragment = line.map { "#L\($0)" } ?? ""
        return (path.hasPrefix("/") ? "file://" + Self.encode(path) : Self.encode(prefix + path)) + fragment
    }

    /// A link to the file and line of a `file:line:col` location.
    func href(location: String) -> String {
        let parts = location.split(separator: ":", omittingEmptySubsequences: false)
        // Drop a trailing line and column when they are numbers; the first of them is the line.
        var keep = parts.count
        while keep > 1, Int(parts[keep - 1]) != nil { keep -= 1 }
        let line = keep < parts.count ? Int(parts[keep]) : nil
        return href(parts.prefix(keep).joined(separator: ":"), line: line)
    }

    /// `path` with every byte outside A–Z a–z 0–9 `-._~/` percent-encoded (UTF-8, upper-case hex).
    static func encode(_ path: String) -> String {
        var out = ""
        for byte in path.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}

extension ReportView {
    init(_ r: AuditReport, names: LatentNames, links: LinkBase) {
        let s = r.summary
        let failOn = r.settings.failOn
        title = "Probity audit: \(r.suite.name)"
        passed = s.passed
        verdict = s.passed ? "PASS" : "FAIL"
        complete = r.complete
        suite = r.suite.name
        suiteLocation = r.suite.path
        generatedBy = "probity \(r.probityVersion), \(r.startedAt) – \(r.finishedAt), \(Markup.number(r.timings.totalSeconds, digits: 1)) s"
        model = [Pair(key: "name", value: r.model.name), Pair(key: "path", value: r.model.path),
                 Pair(key: "sha256", value: Self.short(r.model.sha256), full: r.model.sha256)]
        packs = r.packs.map { PackRow(name: $0.name, path: $0.path, sha256: $0.sha256, digest: Self.short($0.sha256)) }
        let st = r.settings
        settings = [
            Pair(key: "max tokens", value: "\(st.maxTokens)"), Pair(key: "temperature", value: Markup.number(st.temperature, digits: 2)),
            Pair(key: "top p", value: Markup.number(st.topP, digits: 2)), Pair(key: "seed", value: "\(st.seed)"),
            Pair(key: "chat format", value: st.chatFormat), Pair(key: "fail on", value: st.failOn.rawValue + " and above"),
            Pair(key: "shard", value: "\(st.shard.index)/\(st.shard.count)"),
            Pair(key: "suite", value: "\(r.suite.path) (\(r.suite.cases) cases, sha256 \(Self.short(r.suite.sha256)))",
                 full: r.suite.sha256),
        ]
        counts = [
            Pair(key: "cases", value: "\(s.cases)"), Pair(key: "cases failed", value: "\(s.casesFailed)"),
            Pair(key: "findings", value: "\(s.findings)"),
            Pair(key: "findings at or above \(failOn.rawValue)", value: "\(s.findingsAtOrAboveFailOn)"),
            Pair(key: "expectations failed", value: "\(s.expectationsFailed)"),
        ]
        findingsCount = "\(s.findings)"
        severities = RuleSeverity.allCases.reversed().map {
            SeverityRow(severity: $0.rawValue, count: "\(s.findingsBySeverity[$0] ?? 0)", atOrAboveFailOn: $0 >= failOn)
        }
        rules = r.rules.map { rule in
            let n = s.findingsByRule[rule.id] ?? 0
            return RuleRow(id: rule.id, severity: rule.severity.rawValue, count: "\(n)", fired: n > 0, trust: rule.trust,
                           description: rule.description, location: "\(rule.file):\(rule.line)",
                           href: links.href(rule.file, line: rule.line), intervenes: rule.intervenes)
        }
        validity = r.rules.map { rule in
            guard let v = rule.validity else {
                return ValidityRow(id: rule.id, measured: false, auroc: "–", tpr: "–", fpr: "–", benignFPR: "–", n: "–", data: "", dataDigest: "")
            }
            return ValidityRow(id: rule.id, measured: true, auroc: Markup.number(v.auroc, digits: 3),
                               tpr: Self.percent(v.tpr), fpr: Self.percent(v.fpr), benignFPR: Self.percent(v.benignFPR),
                               n: "\(v.n)", data: v.data, dataDigest: Self.short(v.data))
        }
        validityMeasured = "\(r.rules.filter { $0.validity != nil }.count) of \(r.rules.count)"
        let ruleByID = Dictionary(r.rules.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var rows: [Finding] = []
        for c in r.cases {
            for f in c.baseline.fired {
                let rule = ruleByID[f.rule]
                rows.append(Finding(caseID: c.id, caseAnchor: Self.anchor(c), rule: f.rule, severity: f.severity.rawValue,
                                    rank: "\(RuleSeverity.allCases.firstIndex(of: f.severity) ?? 0)",
                                    value: Markup.number(f.value), valueSort: String(f.value.isFinite ? f.value : 0),
                                    positions: "\(f.positions.count)",
                                    location: rule.map { "\($0.file):\($0.line)" } ?? "(rule not in report)",
                                    href: rule.map { links.href($0.file, line: $0.line) } ?? "#rules"))
            }
        }
        findings = rows
        hasFindings = !rows.isEmpty
        severityOptions = RuleSeverity.allCases.reversed().map { Option(value: $0.rawValue, label: $0.rawValue, selected: false) }
        ruleOptions = r.rules.map(\.id).sorted().map { Option(value: $0, label: $0, selected: false) }
        failedExpectations = r.cases.flatMap { c in
            c.expectations.filter { !$0.passed }.map {
                Expectation(caseID: c.id, caseAnchor: Self.anchor(c), rule: $0.rule, expected: $0.expected.rawValue,
                            actual: $0.actual.rawValue, location: $0.location)
            }
        }
        hasFailedExpectations = !failedExpectations.isEmpty
        hasReconstruction = !s.reconstruction.isEmpty
        reconstruction = s.reconstruction.map { p in
            func fvu(_ f: AuditReport.PooledFVU) -> String { f.fvu.map { Markup.number($0) } ?? "n/a" }
            return Pair(key: p.pack, value: "FVU \(fvu(p.response)) over \(p.response.positions) response positions, "
                        + "\(fvu(p.prompt)) over \(p.prompt.positions) prompt positions (baseline runs)")
        }
        cases = r.cases.map { CaseView($0, names: names, links: links) }
    }

    /// A digest as the page shows it: its first 12 hex digits (the full one is in the element's title).
    static func short(_ digest: String) -> String { digest.count > 12 ? digest.prefix(12) + "…" : digest }

    /// A rate in [0, 1] as a percentage with one decimal.
    static func percent(_ x: Double) -> String { Markup.number(x * 100, digits: 1) + "%" }

    /// The id of a case's section: its index, so any case id makes a valid anchor.
    static func anchor(_ c: AuditReport.Case) -> String { "case-\(c.index)" }
}
