// `probity report merge`: joins the reports of `probity audit --shard I/N` runs, or the lines of
// `probity serve` audit logs, into one report.
// `probity report html`: a report as one self-contained HTML page.

import ArgumentParser
import Foundation
import ProbityAudit
import ProbityHTML

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "Work with audit reports.", subcommands: [ReportMerge.self, ReportHTML.self])
}

struct ReportMerge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge", abstract: "Merge shard reports of one suite, or served requests' audit logs, into one report (and its JUnit XML).")

    @Argument(help: "Shard reports (JSON), or audit logs of `probity serve` (JSONL, one report per line).")
    var reports: [String]

    @Option(help: "The merged JSON report.")
    var out: String

    @Option(help: "Also write the merged JUnit XML here.")
    var junit: String?

    func run() throws {
        guard !reports.isEmpty else { throw ValidationError("give at least one report to merge") }
        let merged = try AuditReport.merge(try reports.flatMap { path in try AuditReport.readAll(path: path).map { (path, $0) } })
        try AuditReport.writeAtomically(try merged.json(), to: out)
        if let junit { try AuditReport.writeAtomically(Data(merged.junit().utf8), to: junit) }
        if !printSummary(merged, json: out, junit: junit) { throw ExitCode(Exit.findings) }
    }
}

struct ReportHTML: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "html",
        abstract: "Write a report as one self-contained HTML page (no network: inline styles, SVG and script).")

    @Argument(help: "The JSON report (from `probity audit` or `probity report merge`).")
    var report: String

    @Option(name: [.short, .customLong("out")], help: "The page (default: the report's path with .html).")
    var out: String?

    func run() throws {
        let path = out ?? Self.defaultPage(for: report)
        try ReportPage.write(try AuditReport.read(path: report), to: path)
        print("page: \(path)")
    }

    /// `r.json` → `r.html`; any other name gets `.html` appended.
    static func defaultPage(for report: String) -> String {
        report.hasSuffix(".json") ? String(report.dropLast(5)) + ".html" : report + ".html"
    }
}
