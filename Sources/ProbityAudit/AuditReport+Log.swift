// Reading an audit log: the JSONL file `probity serve --audit-log` appends to, one compact report
// of one served request per line. `probity report merge` takes logs and report files alike.

import Foundation
import ProbityFormats

extension AuditReport {
    /// The reports in `path`: one report (a JSON document as `json()` writes it), or an audit log
    /// of one compact report per line (blank lines skipped). Each line is read as strictly as a
    /// report file, and an error names the line (`FILE:LINE`).
    public static func readAll(path: String) throws -> [AuditReport] {
        guard let file = try FileBytes.open(path, what: "report", limit: FileSizeLimits.report) else {
            throw AuditError.cannotRead(path: path, reason: "no such file")
        }
        return try file.withData { try reports(in: $0, path: path) }
    }

    private static func reports(in data: Data, path: String) throws -> [AuditReport] {
        let lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
        // A report file opens with a line holding "{" alone; every line of a log is a whole object.
        let first = lines.first { !$0.allSatisfy(Self.isSpace) }
        guard let first, first.count > 1, first.first == UInt8(ascii: "{"), first.last == UInt8(ascii: "}") else {
            return [try decode(data, path: path)]
        }
        var reports: [AuditReport] = []
        for (i, line) in lines.enumerated() where !line.allSatisfy(Self.isSpace) {
            reports.append(try decode(Data(line), path: "\(path):\(i + 1)"))
        }
        return reports
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0D }
}
