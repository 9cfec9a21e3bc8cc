// `probity diff [MODEL] --lora ADAPTER[:SCALE] --pack PACK… --corpus FILE…`: the same texts through
// the base model and the model with the adapters; per pack the features (SAE latents, directions,
// probes) whose statistics change most, with where they changed (docs/diff.md).

import ArgumentParser
import Foundation
import ProbityAudit
import ProbityFeatures

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Diff a model with LoRA adapters against the base: the features whose statistics change most on the same texts.",
        discussion: """
            Ranks each pack's features by score = max(|mean effect|, |frequency effect|) (docs/diff.md); \
            --json prints the report docs/diff.schema.json describes.
            """)

    @OptionGroup var modelArgument: ModelArgument
    @OptionGroup var adapterOptions: AdapterOptions
    @OptionGroup var threadsOption: ThreadsOption

    @Option(parsing: .upToNextOption, help: "Feature packs (SAE, directions or probe); repeatable.")
    var pack: [String] = []

    @Option(parsing: .upToNextOption, help: "Inputs: corpora as `features stats` reads them, or chat JSONL ({\"messages\": [...], \"response\": \"...\"}, the response teacher-forced).")
    var corpus: [String] = []

    @Option(help: "Compare at most this many positions (non-special tokens); default: all of the inputs.")
    var tokens: Int?

    @Option(help: "Features listed per pack.")
    var top: Int = 20

    @Option(name: .customLong("rank-by"), help: "score, mean, frequency, paired or peak (docs/diff.md).")
    var rankBy: String = "score"

    @Option(help: "Contexts kept per feature and direction of change.")
    var contexts: Int = 3

    @Option(help: "Tokens per window for corpus documents (chat items run whole).")
    var window: Int = 256

    @OptionGroup var jsonOutput: JSONOutput

    @Option(help: "Also write the JSON report to this file.")
    var out: String?

    @OptionGroup var chatFormatOption: ChatFormatOption
    @OptionGroup var mismatchOption: ModelMismatchOption

    func run() throws {
        guard let ranking = FeatureDiffRanking(rawValue: rankBy) else {
            throw DiffError.argument("--rank-by: expected \(FeatureDiffRanking.allCases.map(\.rawValue).joined(separator: ", ")), found '\(rankBy)'")
        }
        var request = ModelDiffRequest(model: modelArgument.model, adapters: try adapterOptions.requests(), packs: pack, inputs: corpus)
        request.tokens = tokens
        request.top = top
        request.rankBy = ranking
        request.window = window
        request.contexts.contextsPerLatent = contexts
        request.chatFormat = chatFormatOption.chatFormat ?? "auto"
        request.threads = threadsOption.threads
        request.allowModelMismatch = mismatchOption.allowModelMismatch
        try request.validate()
        let report = try ModelDiff.run(request, version: Version.current) { p in
            let rate = Double(p.positions) / max(p.seconds, 1e-9)
            FileHandle.standardError.write(Data(String(format: "diff: %d positions, %.0f positions/s\n", p.positions, rate).utf8))
        }
        let encoded = try report.json()
        if let out { try AuditReport.writeAtomically(encoded, to: out) }
        if jsonOutput.json {
            FileHandle.standardOutput.write(encoded)
        } else {
            print(report.table(), terminator: "")
        }
    }
}
