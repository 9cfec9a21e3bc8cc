// The one error type of ProbityAudit: bad suites, rule files, datasets and reports, each with
// where it is (file:line:col when a YAML node is at fault) and what was expected.

import ProbityRules

/// What can be wrong with an audit's input.
public enum AuditError: Error, CustomStringConvertible, Equatable {
    /// A suite, dataset or report that cannot be read.
    case cannotRead(path: String, reason: String)
    /// A suite key with the wrong shape or value.
    case invalid(FileLocation, message: String)
    /// A rule file or glob the suite names that matches nothing.
    case missingRules(FileLocation, pattern: String)
    /// The rule files have errors (every diagnostic, compiler style).
    case rules([Diagnostic])
    /// A dataset line (JSONL) or item (JSON array) without the mapped field.
    case dataset(path: String, item: Int, reason: String, suite: FileLocation)
    /// An expectation names a rule that none of the suite's rule files define.
    case unknownRule(FileLocation, id: String, known: [String])
    /// A shard `I/N` that does not parse or is out of range.
    case badShard(String)
    /// A shard `--shard auto` cannot read from the environment: the variable at fault, what it
    /// should hold and what it holds.
    case badShardEnvironment(variable: String, expected: String, found: String)
    /// Reports to merge that are not shards of one run.
    case badMerge(path: String, reason: String)
    /// A report whose key at `key` (a path like `cases[2].baseline.finish_reason`) is missing,
    /// mistyped, out of range or unknown.
    case badReport(path: String, key: String, reason: String)
    /// A line of labelled eval data (JSONL) that is not a valid item.
    case data(path: String, line: Int, reason: String)
    /// An eval that cannot be run as asked.
    case badEval(String)

    public var description: String {
        switch self {
        case let .cannotRead(path, reason): return "\(path): cannot read: \(reason)"
        case let .invalid(l, message): return "\(l): \(message)"
        case let .missingRules(l, pattern):
            return "\(l): rules: '\(pattern)' matches no rule file (relative to the suite's directory)"
        case let .rules(diagnostics): return diagnostics.map(\.description).joined(separator: "\n")
        case let .dataset(path, item, reason, suite):
            return "\(path): item \(item): \(reason) (dataset named at \(suite))"
        case let .unknownRule(l, id, known):
            return "\(l): expectation names rule '\(id)', which the suite's rule files do not define (known: \(known.joined(separator: ", ")))"
        case let .badShard(text): return "shard: expected I/N with 1 ≤ I ≤ N, found '\(text)'"
        case let .badShardEnvironment(variable, expected, found):
            return "shard from the environment: \(variable): expected \(expected), found \(found)"
        case let .badMerge(path, reason): return "\(path): cannot merge: \(reason)"
        case let .badReport(path, key, reason): return "\(path): \(key): \(reason) (docs/report.schema.json)"
        case let .data(path, line, reason): return "\(path):\(line): \(reason)"
        case let .badEval(message): return message
        }
    }
}
