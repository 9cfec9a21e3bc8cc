// `probity rules test`: runs every rule's embedded `tests:` through the model with that rule
// attached (greedy decoding), one line per test; exit 1 when any expectation does not hold.

import ArgumentParser
import Foundation
import ProbityLM
import ProbityRules

struct RulesTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run the rules' embedded tests on the model (exit 1 if any fails).")

    @OptionGroup var options: RulePathOptions

    @Flag(help: "Run packs made for another model (the mismatch is reported as a warning).")
    var allowModelMismatch = false

    /// Tokens generated for a test that gives no max_tokens.
    static let defaultMaxTokens = 32

    func run() throws {
        let loaded = try LoadedModel.load(options.model)
        let compiled: CompiledRules
        do {
            compiled = try CompiledRules.compile(files: options.resolvedPaths, model: loaded,
                                                 allowModelMismatch: allowModelMismatch)
        } catch RulesError.invalid(let found) {
            Diagnostics(found).writeText()
            throw ExitCode(Exit.badInput)
        }
        if !compiled.warnings.isEmpty { Diagnostics(compiled.warnings).writeText() }

        let generator = Generator(model: loaded.model, tokenizer: loaded.tokenizer)
        var passed = 0, failed = 0
        for rule in compiled.rules {
            let run = try compiled.makeRun(steered: true, only: [rule.id])
            for (n, test) in rule.rule.tests.enumerated() {
                run.reset()
                let prompt: [Int]
                switch test.input {
                case .prompt(let text):
                    prompt = loaded.tokenizer.encode(text, addSpecial: true, parseSpecial: true)
                case .messages(let messages):
                    let format = try ChatTemplate.format(for: loaded.file, override: nil)
                    prompt = loaded.tokenizer.encode(try format.render(messages, addGenerationPrompt: true),
                                                     addSpecial: true, parseSpecial: true)
                }
                let options = GenerationOptions(maxTokens: test.maxTokens ?? Self.defaultMaxTokens)
                let output = try generator.generate(prompt: prompt, options: options, hooks: run.hooks,
                                                    shouldStop: { run.shouldStop })
                guard let result = run.results().first else { continue }
                var problems: [String] = []
                if result.fired != (test.expect == .fires) {
                    problems.append("expected it to \(test.expect == .fires ? "fire" : "stay silent"), it \(result.fired ? "fired" : "stayed silent")")
                }
                for s in test.outputContains where !output.text.contains(s) { problems.append("output lacks \(quoted(s))") }
                for s in test.outputExcludes where output.text.contains(s) { problems.append("output contains \(quoted(s))") }
                let name = test.name.map { " '\($0)'" } ?? " #\(n + 1)"
                let observed = (result.fired ? "fired at position \(result.firedAt ?? -1)" : "silent") + "; " + result.summary
                if problems.isEmpty {
                    passed += 1
                    print("PASS \(rule.id)\(name) (\(test.location)): \(test.expect.rawValue): \(observed)")
                } else {
                    failed += 1
                    print("FAIL \(rule.id)\(name) (\(test.location)): \(problems.joined(separator: "; ")): \(observed)")
                    print("     output: \(quoted(output.text))")
                }
            }
        }
        print("\(passed + failed) test\(passed + failed == 1 ? "" : "s"): \(passed) passed, \(failed) failed")
        if failed > 0 { throw ExitCode(Exit.findings) }
    }

    private func quoted(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n") + "\""
    }
}

extension Diagnostics {
    /// Diagnostics already gathered (a failed compile's), to print.
    init(_ found: [Diagnostic]) {
        self.init()
        for d in found {
            if d.severity == .error { error(d.message, at: d.location, hint: d.hint) } else { warning(d.message, at: d.location, hint: d.hint) }
        }
    }
}
