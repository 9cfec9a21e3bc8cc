// SIGINT during a real `probity audit` (docs/audits.md, "Reports"): once a case has finished (the
// progress lines on standard error say so), an interrupt stops the run at the next token; the
// report on disk is valid JSON, marked incomplete, holds the cases before the first unfinished one,
// and the exit status is 1. One case at a time (`--batch-size 1`) that is at least the first case;
// batched, cases finish out of order, so it is any prefix of them.

import Foundation
import ProbityAudit
import Testing

@Suite(.serialized) struct AuditInterruptCLITests {
    static let cases = 8

    /// A suite of `cases` chat cases with one watching rule that fires on every response.
    static func suite(_ dir: URL) throws -> String {
        _ = try AuditCLITests.suite(dir, expect: "fires")   // for the rules.yaml it writes
        let path = dir.appendingPathComponent("long.yaml").path
        var text = """
        schema_version: 1
        name: long
        rules: [rules.yaml]
        generation: {max_tokens: 24}
        cases:

        """
        for i in 1...cases {
            text += "  - id: c\(i)\n    messages: [{role: user, content: \"Tell me a story about the number \(i).\"}]\n"
        }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test(arguments: [1, 2])
    func interruptedRunWritesTheFinishedCasesMarkedIncomplete(batchSize: Int) throws {
        let dir = try CLI.scratch()
        let path = try Self.suite(dir)
        let out = dir.appendingPathComponent("r.json").path, junit = dir.appendingPathComponent("r.xml").path

        let process = Process()
        process.executableURL = CLI.binary
        process.arguments = ["audit", path, "--out", out, "--junit", junit, "--threads", "2", "--batch-size", String(batchSize)]
        let stdout = Pipe(), stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()

        // Progress (not a terminal): "audit: case K/N: ID" as each case starts. With `batchSize`
        // cases in flight, case batchSize + 1 starting means one has finished.
        var progress = ""
        let handle = stderr.fileHandleForReading
        while !progress.contains("audit: case \(batchSize + 1)/\(Self.cases): ") {
            let chunk = handle.availableData
            if chunk.isEmpty { break }   // the process ended first
            progress += String(decoding: chunk, as: UTF8.self)
        }
        #expect(process.isRunning, "the audit ended before it could be interrupted: \(progress)")
        process.interrupt()   // SIGINT
        let rest = handle.readDataToEndOfFile()
        let printed = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        progress += String(decoding: rest, as: UTF8.self)

        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 1, "\(progress)")
        #expect(printed.contains("interrupted: the report holds only the cases that finished"))

        let report = try AuditReport.read(path: out)
        #expect(!report.complete)
        let cases = report.cases
        #expect(cases.count >= (batchSize == 1 ? 1 : 0) && cases.count < Self.cases, "\(cases.count) cases")
        #expect(cases.map(\.id) == (0..<cases.count).map { "c\($0 + 1)" })
        #expect(!report.summary.passed)
        #expect(report.summary.cases == cases.count)
        #expect(report.suite.cases == Self.cases)
        #expect(FileManager.default.fileExists(atPath: junit))
    }
}
