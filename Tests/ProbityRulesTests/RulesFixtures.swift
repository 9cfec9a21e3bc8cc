// Paths to the rules fixtures (Tests/Fixtures/rules, see its README) and helpers to load them.

import Foundation
@testable import ProbityRules

enum RulesFixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/rules").path

    static func path(_ relative: String) -> String { directory + "/" + relative }

    /// Lints `paths` as `probity rules lint --model` would with a 30-block model.
    static func lint(_ paths: [String], blocks: Int? = 30) -> (RuleSet, Diagnostics) {
        var diagnostics = Diagnostics()
        let set = RuleSet.load(paths, blocks: blocks, into: &diagnostics)
        return (set, diagnostics)
    }

    /// Diagnostics as the corpus files spell their expectations: `LINE:COL: SEVERITY: MESSAGE`
    /// lines, each followed by `hint: HINT` when it has one.
    static func expectationLines(_ diagnostics: Diagnostics) -> [String] {
        diagnostics.sorted.flatMap { d -> [String] in
            let line = "\(d.location.line):\(d.location.column): \(d.severity.rawValue): \(d.message)"
            return [line] + (d.hint.map { ["hint: \($0)"] } ?? [])
        }
    }

    /// The `# expect:` and `# expect-hint:` lines of a corpus file, in the same form.
    static func expectedLines(in path: String) throws -> [String] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            if line.hasPrefix("# expect: ") { return String(line.dropFirst("# expect: ".count)) }
            if line.hasPrefix("# expect-hint: ") { return "hint: " + line.dropFirst("# expect-hint: ".count) }
            return nil
        }
    }

    static func brokenFiles() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path("broken"))) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.sorted()
    }
}
