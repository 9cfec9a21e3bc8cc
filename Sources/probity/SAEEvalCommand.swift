// `probity sae eval`: an SAE pack's FVU, L0, dead and dense latents and CE loss recovered on the
// held-out split of corpora.

import ArgumentParser
import Foundation
import ProbityFeatures
import ProbityLM
import ProbityTraining

struct SAEEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate an SAE pack on held-out text: FVU, L0, dead/dense latents, CE loss recovered.")

    @Argument(help: "The SAE pack (or SAELens directory).")
    var pack: String

    @OptionGroup var modelOptions: ModelOptions

    @Option(parsing: .upToNextOption, help: "Corpus files; their held-out split is used (--split to change).")
    var corpus: [String] = []

    @Option(help: "Positions to evaluate.")
    var tokens: Int = 20000

    @Option(help: "Which documents: held-out, train or all.")
    var split: String = "held-out"

    @Option(help: "Tokens per context window.")
    var context: Int = 256

    @OptionGroup var chatFormatOption: ChatFormatOption
    var chatFormat: String? { chatFormatOption.chatFormat }

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    func run() throws {
        guard tokens > 0 else { throw TrainingError.badArgument(name: "--tokens", expected: "a positive number", found: "\(tokens)") }
        guard context >= 2 else { throw TrainingError.badArgument(name: "--context", expected: "at least 2", found: "\(context)") }
        guard let which = CorpusSplit(rawValue: split) else {
            throw TrainingError.badArgument(name: "--split", expected: "held-out, train or all", found: split)
        }
        guard !corpus.isEmpty else { throw TrainingError.badArgument(name: "--corpus", expected: "at least one file", found: "none") }
        let corpora = try corpus.map { try Corpus(path: $0) }
        let featurePack = try FeaturePack.load(path: pack)
        guard let sae = featurePack.sae else { throw FeatureError.needsSAE(pack: featurePack.name, action: "sae eval") }
        let loaded = try modelOptions.load()
        _ = try featurePack.checkCompatibility(model: loaded.model.info, modelPath: loaded.path,
                                               modelName: try loaded.file.optionalString("general.name"),
                                               allowModelMismatch: false)
        let format: ChatFormat? = try? ChatTemplate.format(for: loaded.file, override: chatFormat)
        if let chatFormat { _ = try ChatFormat.named(chatFormat) }
        let source = WindowSource(corpora: corpora, split: which, tokenizer: loaded.tokenizer, chatFormat: format, context: context)
        let m = try SAEEvaluation.evaluate(sae: sae, model: loaded.model, tokenizer: loaded.tokenizer, point: featurePack.hook,
                                           source: source, tokens: tokens)
        guard m.positions > 0 else { throw TrainingError.emptyCorpus(split: which.rawValue, paths: corpus) }
        if json {
            var o = m.json
            o["pack"] = featurePack.name
            o["hook"] = featurePack.hook.name
            o["split"] = which.rawValue
            let data = try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("pack \(featurePack.name) at \(featurePack.hook.name), \(m.positions) \(which.rawValue) positions")
            print(String(format: "FVU %.4f  L0 %.2f  dead %d/%d  dense %d", m.fvu, m.l0, m.deadLatents, m.dSAE, m.denseLatents))
            print(String(format: "CE clean %.4f  spliced %.4f  zero-ablated %.4f  recovered %.4f",
                         m.ceClean, m.ceSpliced, m.ceZeroAblated, m.ceLossRecovered))
        }
    }
}
