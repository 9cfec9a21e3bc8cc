// Reading and writing audit reports: JSON with sorted keys (so reports diff cleanly), read back
// strictly (a missing, mistyped or unknown key is an error naming its path, never a default), and
// JUnit XML for CI systems that show tests.

import Foundation
import ProbityFormats
import ProbityRules

/// A published JSON document's text: sorted keys (so files diff cleanly), indented, unescaped
/// slashes, a final newline.
func sortedJSON<T: Encodable>(_ value: T) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    var data = try encoder.encode(value)
    data.append(0x0A)
    return data
}

extension AuditReport {
    /// The JSON text: sorted keys, indented, with a final newline.
    public func json() throws -> Data { try sortedJSON(self) }

    /// Reads a report written by `json()`. Fails on the first key that is missing, of the wrong type
    /// or value, or unknown to this schema version, naming its path (`cases[2].baseline.finish_reason`).
    public static func read(path: String) throws -> AuditReport {
        guard let file = try FileBytes.open(path, what: "report", limit: FileSizeLimits.report) else {
            throw AuditError.cannotRead(path: path, reason: "no such file")
        }
        return try file.withData { try decode($0, path: path) }
    }

    /// Decodes a report's JSON text strictly (see `read(path:)`); `path` names the source in errors.
    public static func decode(_ data: Data, path: String) throws -> AuditReport {
        // The text is validated, then walked in place (`JSONOutline`) where a tree of it was built:
        // the typed report is the one decoded copy held.
        try StrictJSON.validate(data, path: path)
        let (top, version): (Int, JSONValue?) = try data.withUnsafeBytes { b in
            let top = JSONOutline.skipSpace(b, from: 0)
            guard JSONOutline.kind(b, at: top) == .object else { return (top, nil) }
            guard let range = try JSONOutline.member("schema_version", b, ofObjectAt: top) else { return (top, nil) }
            return (top, try JSONDecoder().decode(JSONValue.self, from: Data(b[range])))
        }
        guard data.withUnsafeBytes({ JSONOutline.kind($0, at: top) }) == .object else {
            throw AuditError.badReport(path: path, key: "$", reason: "expected an object")
        }
        // The version first, so an older or newer report says so instead of naming a key that moved.
        guard case .number(let v)? = version, v == Double(schemaVersion) else {
            let found = version.map { $0.summary } ?? "nothing"
            throw AuditError.badReport(path: path, key: "schema_version", reason: "expected \(schemaVersion), found \(found)")
        }
        let report: AuditReport
        do { report = try JSONDecoder().decode(AuditReport.self, from: data) } catch let error as DecodingError {
            let (key, reason) = Self.describe(error)
            throw AuditError.badReport(path: path, key: key, reason: reason)
        }
        if let key = report.invalidReconstruction() {
            throw AuditError.badReport(path: path, key: key, reason: "sums that describe no set of positions")
        }
        // Keys the types do not know: what the report would write again lacks them.
        let written = try report.json()
        let extra = try data.withUnsafeBytes { a in
            try written.withUnsafeBytes { b in
                try JSONValue.firstKey(in: a, at: top, missingFrom: b, at: JSONOutline.skipSpace(b, from: 0))
            }
        }
        if let extra {
            throw AuditError.badReport(path: path, key: extra, reason: "unknown key (not in report schema version \(schemaVersion))")
        }
        return report
    }

    static func describe(_ error: DecodingError) -> (key: String, reason: String) {
        func path(_ keys: [any CodingKey]) -> String {
            var out = ""
            for k in keys {
                if let i = k.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + k.stringValue }
            }
            return out.isEmpty ? "$" : out
        }
        switch error {
        case let .keyNotFound(key, context):
            return (path(context.codingPath + [key]), "missing")
        case let .typeMismatch(type, context):
            return (path(context.codingPath), "expected \(Self.typeName(type))")
        case let .valueNotFound(type, context):
            return (path(context.codingPath), "expected \(Self.typeName(type)), found null")
        case let .dataCorrupted(context):
            return (path(context.codingPath), context.debugDescription)
        @unknown default:
            return ("$", "\(error)")
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is UInt64.Type: return "an integer"
        case is Double.Type: return "a number"
        default: return "\(type)".contains("Array") ? "an array" : "an object"
        }
    }

    static func reason(_ error: Error) -> String {
        if case let .dataCorrupted(context) = error as? DecodingError {
            return (context.underlyingError.map { "\($0)" }) ?? context.debugDescription
        }
        return "\(error)"
    }

    /// Writes `data` to `path` through a temporary file and a rename, creating the directory.
    public static func writeAtomically(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url, options: .atomic)
    }

    /// JUnit XML: one testcase per case; a failure per violated expectation and per finding at or
    /// above the report's fail-on severity.
    public func junit() -> String {
        let failOn = settings.failOn
        var body = ""
        var failures = 0
        for c in cases {
            var problems: [String] = []
            for e in c.expectations where !e.passed {
                problems.append("expected rule \(e.rule) to be \(e.expected.rawValue), but it \(e.actual == .fires ? "fired" : "was silent") (\(e.location))")
            }
            for f in c.baseline.fired where f.severity >= failOn {
                let trust = rules.first { $0.id == f.rule }?.trust ?? "unmeasured"
                problems.append("rule \(f.rule) fired (severity \(f.severity.rawValue), at or above \(failOn.rawValue); validity: \(trust))")
            }
            let time = String(format: "%.3f", timings.cases[c.id] ?? 0)
            body += "    <testcase classname=\"\(Self.xml(suite.name))\" name=\"\(Self.xml(c.id))\" time=\"\(time)\""
            guard let first = problems.first else { body += "/>\n"; continue }
            failures += 1
            body += ">\n      <failure message=\"\(Self.xml(first))\">\(Self.xml(problems.joined(separator: "\n")))</failure>\n    </testcase>\n"
        }
        let total = String(format: "%.3f", timings.totalSeconds)
        return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"
            + "  <testsuite name=\"\(Self.xml(suite.name))\" tests=\"\(cases.count)\" failures=\"\(failures)\" errors=\"0\" time=\"\(total)\">\n"
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
