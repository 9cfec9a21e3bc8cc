// `probity rules test`: runs every rule's embedded `tests:` through the model with that rule
// attached (greedy decoding), one line per test (or one JSON document with --json); exit 1 when any
// expectation does not hold.

import ArgumentParser
import Foundation
import ProbityLM
import ProbityRules

struct RulesTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run the rules' embedded tests on the model (exit 1 if any fails).",
        discussion: "--json prints one document on standard output: an object per test, and the counts.")

    @OptionGroup var options: RulePathOptions

    @OptionGroup var mismatchOption: ModelMismatchOption
    var allowModelMismatch: Bool { mismatchOption.allowModelMismatch }

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    @OptionGroup var adapterOptions: AdapterOptions

    /// Tokens generated for a test that gives no max_tokens.
    static let defaultMaxTokens = 32

    func run() throws {
        let loaded = try LoadedModel.load(options.model, adapters: try adapterOptions.requests())
        let compiled: CompiledRules
        do {
            compiled = try CompiledRules.compile(files: options.resolvedPaths, model: loaded,
                                                 allowModelMismatch: allowModelMismatch)
        } catch RulesError.invalid(let found) {
            if json { print(Diagnostics(found).json()) } else { Diagnostics(found).writeText() }
            throw ExitCode(Exit.badInput)
        }
        if !compiled.warnings.isEmpty { Diagnostics(compiled.warnings).writeText() }

        let generator = Generator(model: loaded.model, tokenizer: loaded.tokenizer)
        var passed = 0, failed = 0
        var records: [RuleTestReport.Record] = []
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
                    prompt = loaded.tokenizer.encode(try format.renderChat(messages, addGenerationPrompt: true),
                                                     addSpecial: true)
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
                if problems.isEmpty { passed += 1 } else { failed += 1 }
                if json {
                    records.append(Self.record(rule: rule.id, test: test, index: n + 1, result: result, output: output.text,
                                               problems: problems))
                } else if problems.isEmpty {
                    print("PASS \(rule.id)\(name) (\(test.location)): \(test.expect.rawValue): \(observed)")
                } else {
                    print("FAIL \(rule.id)\(name) (\(test.location)): \(problems.joined(separator: "; ")): \(observed)")
                    print("     output: \(quoted(output.text))")
                }
            }
        }
        if json {
            print(try RuleTestReport(tests: records, passed: passed, failed: failed).json())
        } else {
            print("\(passed + failed) test\(passed + failed == 1 ? "" : "s"): \(passed) passed, \(failed) failed")
        }
        if failed > 0 { throw ExitCode(Exit.findings) }
    }

    /// One test's record (docs/rules-test.schema.json).
    static func record(rule: String, test: RuleTest, index: Int, result: RuleResult, output: String,
                       problems: [String]) -> RuleTestReport.Record {
        RuleTestReport.Record(
            rule: rule, test: test.name ?? "#\(index)",
            file: test.location.file, line: test.location.line, column: test.location.column,
            expect: test.expect.rawValue, fired: result.fired, firedAt: result.firedAt,
            aggregate: result.aggregate.rawValue, minTokens: result.minTokens,
            count: result.aggregate == .count ? result.count : nil,
            observed: result.observations.map { RuleTestReport.Observation(feature: $0.feature, value: $0.value, threshold: $0.threshold) },
            output: output, problems: problems)
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
