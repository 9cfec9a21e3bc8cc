// `probity features stats PACK --corpus FILE... --tokens N`: per latent the firing frequency, max
// activation, activation histogram and top activating contexts over corpora, written into the
// pack's labels file.

import ArgumentParser
import Foundation
import ProbityFeatures
import ProbityLM
import ProbityTraining

struct FeaturesStats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Scan corpora with an SAE pack: each latent's frequency, max activation, activation histogram and top contexts, into its labels file.",
        discussion: """
            Names and descriptions already in the labels file are kept; the statistics are replaced. \
            Contexts are each latent's strongest position per window, with tokens before and after it. \
            The histogram counts every position where a latent fired in 20 equal bins from 0 to its max activation.
            """)

    @Argument(help: "The SAE pack (a directory with pack.json, or a SAELens directory).")
    var pack: String

    @OptionGroup var modelOptions: ModelOptions

    @Option(parsing: .upToNextOption, help: "Corpus files: ShareGPT or chitchat JSON, .txt (paragraphs), .jsonl ({\"text\": ...}).")
    var corpus: [String] = []

    @Option(help: "Positions (non-special tokens) to scan.")
    var tokens: Int

    @Option(help: "Which documents: train (as the SAE was trained on), held-out or all.")
    var split: String = "train"

    @Option(help: "Contexts kept per latent.")
    var contexts: Int = 5

    @Option(help: "Tokens kept before each context's peak.")
    var before: Int = 8

    @Option(help: "Tokens kept after each context's peak.")
    var after: Int = 4

    @Option(help: "Tokens per model window.")
    var window: Int = 256

    @OptionGroup var chatFormatOption: ChatFormatOption
    var chatFormat: String? { chatFormatOption.chatFormat }

    @OptionGroup var mismatchOption: ModelMismatchOption
    var allowModelMismatch: Bool { mismatchOption.allowModelMismatch }

    func run() throws {
        guard let which = parseSplit(split) else {
            throw TrainingError.badArgument(name: "--split", expected: "train, held-out or all", found: split)
        }
        var request = FeatureScanRequest(corpora: corpus, split: which, tokens: tokens)
        request.window = window
        request.options = FeatureStatisticsOptions(contextsPerLatent: contexts, before: before, after: after)
        try request.validate()
        for path in corpus { _ = try Corpus(path: path) }
        let featurePack = try FeaturePack.load(path: pack)
        guard let sae = featurePack.sae else { throw FeatureError.needsSAE(pack: featurePack.name, action: "features stats") }
        let loaded = try modelOptions.load()
        let modelSHA = try SHA256.hex(file: loaded.path)
        let modelName = try loaded.file.optionalString("general.name")
        let mismatch = try featurePack.checkCompatibility(model: loaded.model.info, modelPath: loaded.path, modelName: modelName,
                                                          modelSHA256: modelSHA, allowModelMismatch: allowModelMismatch)
        if let mismatch { print("note: model mismatch allowed: \(mismatch)") }
        if let chatFormat { _ = try ChatFormat.named(chatFormat) }
        let format: ChatFormat? = try? ChatTemplate.format(for: loaded.file, override: chatFormat)

        print("scanning \(which.rawValue) split of \(corpus.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: ", ")) "
              + "with \(featurePack.name) at \(featurePack.hook.name) (\(sae.dSAE) latents), \(tokens) tokens")
        let (stats, seconds) = try FeatureScan.run(request, sae: sae, model: loaded.model, tokenizer: loaded.tokenizer,
                                                   point: featurePack.hook, chatFormat: format) { p in
            let rate = Double(p.positions) / max(p.seconds, 1e-9)
            FileHandle.standardError.write(Data(String(format: "%d/%d tokens, %.0f tokens/s\n", p.positions, p.target, rate).utf8))
        }
        guard stats.positions > 0 else { throw TrainingError.emptyCorpus(split: which.rawValue, paths: corpus) }
        let scan = FeatureScanRecord(corpora: corpus.map { URL(fileURLWithPath: $0).lastPathComponent }, split: which.rawValue,
                                     tokens: stats.positions, window: window, hook: featurePack.hook.name, modelName: modelName,
                                     modelSHA256: modelSHA, before: before, after: after, contextsPerLatent: contexts)
        let labels = stats.labels(updating: featurePack.labels, scan: scan)
        let (path, manifestWritten) = try featurePack.writeLabels(labels, modelName: modelName, modelSHA256: modelSHA)
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil

        if stats.positions < tokens { print("note: the corpora ran out after \(stats.positions) of \(tokens) tokens") }
        print("scanned \(stats.positions) \(which.rawValue) tokens in " + String(format: "%.1f s (%.0f tokens/s)", seconds,
                                                                                          Double(stats.positions) / max(seconds, 1e-9)))
        print(String(format: "dead latents %d/%d (never active), dense latents %d (active on more than %.0f%% of tokens)",
                     stats.deadLatents, stats.dSAE, stats.denseLatents, stats.options.denseFrequency * 100))
        print("wrote \(path)" + (size.map { String(format: " (%.1f MB)", Double($0) / 1e6) } ?? ""))
        if manifestWritten { print("pack.json now names labels.json") }
    }
}

/// A corpus split from the command line; `heldout` is accepted for `held-out`.
func parseSplit(_ text: String) -> CorpusSplit? {
    text == "heldout" ? .heldOut : CorpusSplit(rawValue: text)
}
