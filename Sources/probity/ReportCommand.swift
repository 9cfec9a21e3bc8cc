// `probity report merge`: joins the reports of `probity audit --shard I/N` runs into one report.

import ArgumentParser
import Foundation
import ProbityAudit

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "Work with audit reports.", subcommands: [ReportMerge.self])
}

struct ReportMerge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge", abstract: "Merge shard reports of one suite into one report (and its JUnit XML).")

    @Argument(help: "Shard reports (JSON).")
    var reports: [String]

    @Option(help: "The merged JSON report.")
    var out: String

    @Option(help: "Also write the merged JUnit XML here.")
    var junit: String?

    func run() throws {
        guard !reports.isEmpty else { throw ValidationError("give at least one report to merge") }
        let merged = try AuditReport.merge(try reports.map { ($0, try AuditReport.read(path: $0)) })
        try AuditReport.writeAtomically(try merged.json(), to: out)
        if let junit { try AuditReport.writeAtomically(Data(merged.junit().utf8), to: junit) }
        if !printSummary(merged, json: out, junit: junit) { throw ExitCode(Exit.findings) }
    }
}
