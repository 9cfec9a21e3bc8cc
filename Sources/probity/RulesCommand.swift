// `probity rules`: the command group for rule authors (lint, explain, test).

import ArgumentParser
import Foundation
import ProbityFormats
import ProbityLM
import ProbityRules

struct Rules: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check, explain and test rule files (docs/rules.md).",
        subcommands: [RulesLint.self, RulesExplain.self, RulesTest.self])
}

/// Options shared by the rules subcommands.
struct RulePathOptions: ParsableArguments {
    @Argument(help: "Rule files or directories of .yaml files (default: rules).")
    var paths: [String] = []

    @Option(help: "Also check hook points against this model's blocks (a .gguf path or 'default').")
    var model: String?

    var resolvedPaths: [String] { paths.isEmpty ? ["rules"] : paths }

    /// The model's block count, when a model was named.
    func blocks() throws -> Int? {
        guard let model else { return nil }
        let file = try GGUFFile(path: try ModelLocator.resolve(model))
        return try file.requiredInt(GGUFKey.blockCount(arch: try file.architecture()))
    }
}

extension Diagnostics {
    /// Text diagnostics and a count line on standard error.
    func writeText() {
        guard !isEmpty else { return }
        var text = rendered() + "\n"
        let e = errorCount, w = warningCount
        text += "\(e) error\(e == 1 ? "" : "s"), \(w) warning\(w == 1 ? "" : "s")\n"
        FileHandle.standardError.write(Data(text.utf8))
    }
}
