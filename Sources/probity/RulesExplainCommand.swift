// `probity rules explain RULE-ID`: what one rule compiles to (features, hook points, thresholds,
// actions), in words. The rule files must lint without errors first.

import ArgumentParser
import Foundation
import ProbityRules

struct RulesExplain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Say in words what a rule watches, when it fires and what it does.")

    @Argument(help: "The rule's id.")
    var ruleID: String

    @OptionGroup var options: RulePathOptions

    func run() throws {
        var diagnostics = Diagnostics()
        let blocks = try options.blocks()
        let set = RuleSet.load(options.resolvedPaths, blocks: blocks, into: &diagnostics)
        if diagnostics.hasErrors {
            diagnostics.writeText()
            throw ExitCode(Exit.badInput)
        }
        guard let (rule, file) = set.find(ruleID) else {
            let ids = set.rules.map(\.id)
            var message = "probity: error: no rule '\(ruleID)' in \(options.resolvedPaths.joined(separator: ", "))"
            message += ids.isEmpty ? " (no rules found)" : " (rules: \(ids.joined(separator: ", ")))"
            if let near = set.closestID(to: ruleID) { message += "; did you mean '\(near)'?" }
            FileHandle.standardError.write(Data((message + "\n").utf8))
            throw ExitCode(Exit.badInput)
        }
        var resolveDiagnostics = Diagnostics()
        guard let resolved = set.resolve(rule, in: file, blocks: blocks, into: &resolveDiagnostics) else {
            resolveDiagnostics.writeText()
            throw ExitCode(Exit.badInput)
        }
        if !diagnostics.isEmpty { diagnostics.writeText() }
        print(resolved.explanation)
    }
}
