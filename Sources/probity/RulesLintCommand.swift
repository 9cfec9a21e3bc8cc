// `probity rules lint`: every problem in a set of rule files at once, compiler style. Diagnostics
// go to standard error as `file:line:col: severity: message` (stdout with --json); exit 0 when
// there are no errors (warnings allowed), 2 otherwise.

import ArgumentParser
import Foundation
import ProbityRules

struct RulesLint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lint",
        abstract: "Check rule files and their packs; exit 0 when clean, 2 with every diagnostic otherwise.",
        discussion: "Diagnostics go to standard error; with --json, to standard output as JSON.")

    @OptionGroup var options: RulePathOptions

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    func run() throws {
        var diagnostics = Diagnostics()
        let set = RuleSet.load(options.resolvedPaths, blocks: try options.blocks(), into: &diagnostics)
        set.checkValidity(into: &diagnostics)
        if json {
            print(diagnostics.json())
        } else {
            diagnostics.writeText()
            if !diagnostics.hasErrors {
                print("\(set.rules.count) rule\(set.rules.count == 1 ? "" : "s") in \(set.files.count) file\(set.files.count == 1 ? "" : "s"): ok")
            }
        }
        if diagnostics.hasErrors { throw ExitCode(Exit.badInput) }
    }
}
