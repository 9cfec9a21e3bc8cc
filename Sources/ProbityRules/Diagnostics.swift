// Compiler-style diagnostics: every problem in a set of rule files, each with its file, line and
// column, gathered at once and rendered as `file:line:col: error: message` (the format of clang and
// swiftc, which editors and CI annotators already parse) or as JSON.

import Foundation

/// A place in a source file. Lines and columns count from 1; 0 means "the whole file" (for
/// problems such as a missing file, which have no position).
public struct FileLocation: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// The whole of `file`, for problems without a position.
    public static func file(_ file: String) -> FileLocation {
        FileLocation(file: file, line: 0, column: 0)
    }

    /// `file:line:col`, or just `file` when there is no position.
    public var description: String {
        line > 0 ? "\(file):\(line):\(column)" : file
    }

    public static func < (a: FileLocation, b: FileLocation) -> Bool {
        (a.file, a.line, a.column) < (b.file, b.line, b.column)
    }
}

/// How bad a diagnostic is. Errors stop rules from compiling; warnings do not.
public enum Severity: String, Sendable, Codable, Comparable {
    case error
    case warning

    private var rank: Int { self == .error ? 1 : 0 }
    public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
}

/// One problem found in a rules file.
public struct Diagnostic: Sendable, Hashable, CustomStringConvertible {
    public var location: FileLocation
    public var severity: Severity
    public var message: String
    /// A suggestion that may fix it (`did you mean 'threshold'?`), rendered on its own line.
    public var hint: String?

    public init(_ severity: Severity, _ message: String, at location: FileLocation, hint: String? = nil) {
        self.location = location
        self.severity = severity
        self.message = message
        self.hint = hint
    }

    /// `file:line:col: error: message`, followed by `    hint: ...` on the next line when there is one.
    public var description: String {
        var text = "\(location): \(severity.rawValue): \(message)"
        if let hint { text += "\n    hint: \(hint)" }
        return text
    }
}

/// Collects every diagnostic of a lint or compile run, so all of them are reported at once.
public struct Diagnostics: Sendable {
    public private(set) var items: [Diagnostic] = []

    public init() {}

    public mutating func error(_ message: String, at location: FileLocation, hint: String? = nil) {
        items.append(Diagnostic(.error, message, at: location, hint: hint))
    }

    public mutating func warning(_ message: String, at location: FileLocation, hint: String? = nil) {
        items.append(Diagnostic(.warning, message, at: location, hint: hint))
    }

    /// Records a thrown rules error (a YAML problem, a wrong type) as an error diagnostic.
    public mutating func record(_ error: RulesError) {
        items.append(contentsOf: error.diagnostics)
    }

    public mutating func append(contentsOf other: Diagnostics) {
        items.append(contentsOf: other.items)
    }

    public var hasErrors: Bool { items.contains { $0.severity == .error } }
    public var errorCount: Int { items.count { $0.severity == .error } }
    public var warningCount: Int { items.count { $0.severity == .warning } }
    public var isEmpty: Bool { items.isEmpty }

    /// In file, line and column order; the order found is kept for equal locations.
    public var sorted: [Diagnostic] {
        items.enumerated().sorted { a, b in
            a.element.location != b.element.location ? a.element.location < b.element.location : a.offset < b.offset
        }.map(\.element)
    }

    /// One diagnostic per line (plus hint lines), in source order.
    public func rendered() -> String {
        sorted.map(\.description).joined(separator: "\n")
    }

    /// `{"diagnostics": [{"column", "file", "hint"?, "line", "message", "severity"}], "errors", "warnings"}`
    /// with sorted keys, so the output diffs cleanly.
    public func json() -> String {
        struct Item: Encodable {
            var file: String, line: Int, column: Int, severity: Severity, message: String, hint: String?
        }
        struct Report: Encodable {
            var diagnostics: [Item]
            var errors: Int
            var warnings: Int
        }
        let report = Report(
            diagnostics: sorted.map {
                Item(file: $0.location.file, line: $0.location.line, column: $0.location.column,
                     severity: $0.severity, message: $0.message, hint: $0.hint)
            },
            errors: errorCount, warnings: warningCount)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        // Encoding plain strings and integers cannot fail.
        guard let data = try? encoder.encode(report) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Edit distance counting insertions, deletions, substitutions and swaps of adjacent letters (the
/// "optimal string alignment" distance), for `did you mean` hints: `wacth` is one edit from `watch`.
/// - Complexity: O(a.count × b.count); inputs are short keys and names.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.lowercased().unicodeScalars), b = Array(b.lowercased().unicodeScalars)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    // Three rows: the one before the previous is needed for swaps.
    var beforePrevious = [Int](repeating: 0, count: b.count + 1)
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                current[j] = min(current[j], beforePrevious[j - 2] + 1)
            }
        }
        (beforePrevious, previous, current) = (previous, current, beforePrevious)
    }
    return previous[b.count]
}

/// The closest candidate to `word`, if one is close enough to be a likely typo (at most a third of
/// the word's letters changed, and at least one).
func closest(to word: String, in candidates: [String]) -> String? {
    let limit = max(1, word.count / 3)
    var best: (name: String, distance: Int)?
    for candidate in candidates {
        let d = editDistance(word, candidate)
        if d <= limit, d < (best?.distance ?? Int.max) { best = (candidate, d) }
    }
    return best?.name
}
