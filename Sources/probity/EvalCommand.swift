// `probity eval [MODEL] RULES… --data FILE.jsonl [--calibrate CAL.jsonl --target-fpr R]`: measures
// rules as detectors on labelled data (docs/eval.md): per rule AUROC with a bootstrap interval,
// TPR/FPR at its threshold, the false-positive rate on benign exchanges, and optionally the
// threshold chosen on disjoint calibration data with the rates it gives on the test data.

import ArgumentParser
import Foundation
import ProbityAudit
import ProbityLM
import ProbityRules

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Measure rules as detectors on labelled data: AUROC, TPR/FPR at threshold, benign FPR (docs/eval.md).",
        discussion: "--json prints the result as docs/eval.schema.json describes it (with --steer, docs/eval-steer.schema.json).")

    @Argument(help: "An optional model ('default', a model name such as 'gemma3-270m', or a .gguf path) followed by rule files or directories of .yaml files.")
    var paths: [String] = []

    @Option(name: .customLong("data"), help: "Labelled items, JSONL (repeatable).")
    var data: [String] = []

    @Option(name: .customLong("calibrate"), help: "Calibration items, JSONL (repeatable): choose each rule's threshold on them.")
    var calibrate: [String] = []

    @Option(name: .customLong("target-fpr"), help: "With --calibrate: the most the calibration negatives may fire (default 0.05).")
    var targetFPR: Double?

    @OptionGroup var jsonOutput: JSONOutput
    var json: Bool { jsonOutput.json }

    @Option(help: "Also write the JSON result to this file.")
    var out: String?

    @OptionGroup var chatFormatOption: ChatFormatOption
    var chatFormat: String { chatFormatOption.chatFormat ?? "auto" }

    @Option(help: "Bootstrap resamples for each AUROC interval.")
    var resamples: Int = 1000

    @OptionGroup var threadsOption: ThreadsOption
    var threads: Int? { threadsOption.threads }

    @OptionGroup var adapterOptions: AdapterOptions

    @OptionGroup var steering: EvalSteerOptions

    func validate() throws {
        guard resamples >= 1 else { throw ValidationError("--resamples: expected at least 1, found \(resamples)") }
        guard !data.isEmpty else { throw ValidationError("--data: give at least one labelled JSONL file") }
        if let targetFPR {
            guard !calibrate.isEmpty else { throw ValidationError("--target-fpr: only with --calibrate FILE.jsonl") }
            guard targetFPR >= 0 && targetFPR < 1 else { throw ValidationError("--target-fpr: expected a rate in [0, 1), found \(targetFPR)") }
        }
    }

    func run() throws {
        var rest = paths
        var model = "default"
        // A model name (`gemma3-270m`) is a model unless a rule file or directory has that name.
        if let first = rest.first, first == "default" || first.hasSuffix(".gguf")
            || (ModelLocator.named[first] != nil && !FileManager.default.fileExists(atPath: first)) {
            model = first
            rest.removeFirst()
        }
        var diagnostics = Diagnostics()
        let files = RuleSet.ruleFiles(rest.isEmpty ? ["rules"] : rest, into: &diagnostics)
        if diagnostics.errorCount > 0 { throw AuditError.rules(diagnostics.items) }
        if steering.steer { return try runSteer(model: model, ruleFiles: files) }
        let request = calibrate.isEmpty ? nil : Evaluation.CalibrationRequest(files: calibrate, targetFPR: targetFPR ?? 0.05)
        let result = try Evaluation.run(model: model, adapters: try adapterOptions.requests(), ruleFiles: files, dataFiles: data, calibrate: request, chatFormat: chatFormat,
                                        version: Version.current, threads: threads, resamples: resamples,
                                        progress: Self.progress(label: "eval"))
        if try !emit(json: result.json(), table: result.table()) {
            let lines = result.validityLines()
            if !lines.isEmpty {
                print(request == nil ? "\nto record in each rule (docs/eval.md):"
                                     : "\nto record in each rule, with its threshold set to the calibrated one (docs/eval.md):")
                for (rule, line) in lines { print("  \(rule): \(line)") }
            }
            let unchecked = result.rules.filter { !$0.leakageUnchecked.isEmpty }
            if !unchecked.isEmpty {
                print("\nleakage not checked (the pack records no derivation items): "
                      + Set(unchecked.flatMap(\.leakageUnchecked)).sorted().joined(separator: ", "))
            }
        }
    }

    /// Progress on standard error: one line rewritten in place on a terminal, every 50 items and
    /// the last otherwise.
    static func progress(label: String) -> (EvalProgress) -> Void {
        let terminal = isatty(2) != 0
        return { p in
            guard terminal || p.done == p.total || p.done % 50 == 0 else { return }
            let line = "\(label): \(p.done)/\(p.total) items, " + String(format: "%.1f s", p.seconds)
            FileHandle.standardError.write(Data(((terminal ? "\r" : "") + line + (terminal && p.done < p.total ? "" : "\n")).utf8))
        }
    }

    /// Writes the JSON to `--out` when given, and prints it (`--json`) or the table. Returns whether
    /// it printed the JSON, so the caller adds text below the table only.
    func emit(json encoded: Data, table: String) throws -> Bool {
        if let out { try AuditReport.writeAtomically(encoded, to: out) }
        if json {
            FileHandle.standardOutput.write(encoded)
            return true
        }
        print(table, terminator: "")
        return false
    }
}
