// `probity audit SUITE`: runs an audit suite (docs/audits.md), writes the JSON report and JUnit XML,
// prints the summary, and exits 0 (pass), 1 (findings or violated expectations), 2 or 3.

import ArgumentParser
import Foundation
import ProbityAudit
import ProbityHTML
import ProbityRules

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Run an audit suite: baseline vs steered generation with the suite's rules (docs/audits.md).")

    @Argument(help: "The suite file (audits/*.yaml).")
    var suite: String

    @Option(help: ArgumentHelp("Audit this model instead of the suite's: 'default', 'gemma3-270m' or a GGUF path. The suite's `models:` names the rule files for it; without an entry, its `rules`.", valueName: "model"))
    var model: String?

    @Option(help: "The JSON report (default: reports/SUITE.json; with --model, reports/SUITE.MODEL.json).")
    var out: String?

    @Option(help: "The JUnit XML report (default: reports/SUITE.junit.xml; with --model, reports/SUITE.MODEL.junit.xml).")
    var junit: String?

    @Option(help: "Also write the report as one self-contained HTML page here.")
    var html: String?

    @Option(help: "Fail on findings at or above this severity: info, low, medium, high, critical.")
    var failOn: String = "high"

    @Option(help: ArgumentHelp(
        "Run only shard I of N (every N-th case, from case I), or `auto` to read it from the environment; merge with `probity report merge`.",
        discussion: "auto: PROBITY_SHARD_INDEX (1-based), else JOB_COMPLETION_INDEX (0-based, Kubernetes Indexed Jobs), with PROBITY_SHARD_COUNT."))
    var shard: String = "1/1"

    @Option(help: ArgumentHelp("Cases in flight at once, their generations decoded together and each case's prompt run once for all its runs up to the first position a rule may edit (1: one case at a time, each run with its own prompt pass). The report is the same at any size.",
                               discussion: "The default is chosen for the machine: two cases per core, at least 2 and at most 16, and no more than a quarter of physical memory holds at 100 MB a case (here: \(Audit.defaultBatchSize)).",
                               valueName: "N"))
    var batchSize: Int = Audit.defaultBatchSize

    @OptionGroup var threadsOption: ThreadsOption
    var threads: Int? { threadsOption.threads }

    @Flag(name: .customLong("no-lora"), help: "Drop the LoRA adapters the suite's model names (audit the base model).")
    var noLora = false

    @OptionGroup var adapterOptions: AdapterOptions

    @OptionGroup var kvCacheOption: KVCacheOption
    @OptionGroup var activationsOption: ActivationsOption

    func run() throws {
        guard let severity = RuleSeverity(rawValue: failOn) else {
            throw ValidationError("--fail-on: expected one of info, low, medium, high, critical, found '\(failOn)'")
        }
        guard batchSize >= 1 else {
            throw ValidationError("--batch-size: expected a positive number of cases, found \(batchSize)")
        }
        let part = try shard == "auto" ? Self.shardFromEnvironment() : Audit.shard(shard)
        let base = URL(fileURLWithPath: suite).deletingPathExtension().lastPathComponent
        // Another model's reports do not overwrite the suite's own: reports/SUITE.MODEL.json.
        let modelPart = model.map { m in "." + URL(fileURLWithPath: m).deletingPathExtension().lastPathComponent } ?? ""
        let suffix = modelPart + (part.count == 1 ? "" : ".shard\(part.index)of\(part.count)")
        let jsonPath = out ?? "reports/\(base)\(suffix).json"
        let junitPath = junit ?? "reports/\(base)\(suffix).junit.xml"

        // SIGINT: stop between tokens and write what we have, marked incomplete.
        let terminal = isatty(2) != 0
        let report = try catchingInterrupts { flag in
            try Audit.run(suitePath: suite, version: Version.current, failOn: severity, shard: part, model: model,
                          notChecked: { skipped in
                              let ids = Set(skipped.map(\.rule)).sorted().joined(separator: ", ")
                              FileHandle.standardError.write(Data(("audit: \(skipped.count) expectations name rules that the rule files for "
                                  + "\(model ?? "the model") do not define, so they are not checked on it: \(ids)\n").utf8))
                          }, threads: threads,
                          batchSize: batchSize, adapters: Audit.AdapterChoice(dropSuiteAdapters: noLora, extra: try adapterOptions.requests()),
                          kvCache: try kvCacheOption.storage(), activations: try activationsOption.precision(),
                          interrupted: { flag.isSet }) { p in
                FileHandle.standardError.write(Data(progressLine(p, terminal: terminal).utf8))
            }
        }
        try AuditReport.writeAtomically(try report.json(), to: jsonPath)
        try AuditReport.writeAtomically(Data(report.junit().utf8), to: junitPath)
        if let html { try ReportPage.write(report, to: html) }
        let passed = printSummary(report, json: jsonPath, junit: junitPath)
        if let html { print("page: \(html)") }
        if !passed { throw ExitCode(Exit.findings) }
    }
}

/// A progress bar redrawn in place on a terminal (cases, tokens/s, ETA), a plain line per case otherwise.
func progressLine(_ p: AuditProgress, terminal: Bool) -> String {
    if p.calibrating, let id = p.caseID {
        // Calibration requests run before the cases: a plain line each, terminal or not.
        return (terminal ? "\r" : "") + "audit: calibrating \(p.done + 1)/\(p.total): \(id)" + (terminal ? "\u{1B}[K" : "\n")
    }
    let rate = String(format: "%.1f tok/s", p.tokensPerSecond)
    let eta = p.etaSeconds.map { s in String(format: "ETA %d:%02d", Int(s.rounded()) / 60, Int(s.rounded()) % 60) } ?? "ETA --:--"
    if terminal {
        let width = 30, filled = p.total == 0 ? width : p.done * width / p.total
        return "\r[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            + "] \(p.done)/\(p.total)  \(rate)  " + (p.caseID == nil ? String(format: "%.1f s", p.seconds) : eta) + "  "
            + (p.caseID ?? "done").prefix(32).padding(toLength: 32, withPad: " ", startingAt: 0)
            + (p.caseID == nil ? "\n" : "")
    }
    guard let id = p.caseID else {
        return "audit: \(p.done)/\(p.total) cases run in " + String(format: "%.1f s", p.seconds) + ", \(rate)\n"
    }
    return "audit: case \(p.done + 1)/\(p.total): \(id)" + (p.done > 0 ? " (\(rate), \(eta))" : "") + "\n"
}

/// Prints a report's summary; returns whether it passed.
func printSummary(_ report: AuditReport, json: String, junit: String?) -> Bool {
    let s = report.summary
    var out = "\(s.cases) cases, \(s.findings) findings ("
        + RuleSeverity.allCases.reversed().map { "\($0.rawValue) \(s.findingsBySeverity[$0] ?? 0)" }.joined(separator: ", ") + ")"
        + ", \(s.expectationsFailed) expectations failed\n"
    let rules = Dictionary(report.rules.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    for id in s.findingsByRule.keys.sorted() where (s.findingsByRule[id] ?? 0) > 0 {
        let rule = rules[id]
        out += "  \(id): \(s.findingsByRule[id] ?? 0) (\(rule?.severity.rawValue ?? "?"), validity: \(rule?.trust ?? "unmeasured"))\n"
    }
    for r in s.reconstruction {
        func fvu(_ f: AuditReport.PooledFVU) -> String { f.fvu.map { String(format: "%.3f", $0) } ?? "n/a" }
        out += "  SAE \(r.pack): FVU \(fvu(r.response)) over \(r.response.positions) response positions, "
            + "\(fvu(r.prompt)) over \(r.prompt.positions) prompt positions (baseline runs, centred on their mean)\n"
    }
    if !report.complete { out += "interrupted: the report holds only the cases that finished\n" }
    out += (s.passed ? "PASS" : "FAIL") + " (fail on \(report.settings.failOn.rawValue) and above)\n"
    out += "report: \(json)" + (junit.map { ", junit: \($0)" } ?? "") + "\n"
    print(out, terminator: "")
    return s.passed
}
