// `probity features derive`: a steering direction by contrastive activation addition (mean
// difference over paired prompts), written as a directions pack with its provenance.

import ArgumentParser
import Foundation
import ProbityFeatures
import ProbityLM

struct FeaturesDerive: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "derive",
        abstract: "Derive a steering direction from contrast pairs (CAA: mean activation difference).")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "JSONL of positive prompts (one per line: a string, {\"text\": ...} or {\"messages\": [...]}).")
    var positive: String

    @Option(help: "JSONL of negative prompts, paired line by line with --positive.")
    var negative: String

    @Option(help: "Hook point, e.g. blocks.15.hook_resid_post.")
    var hook: String

    @Option(help: "Which positions stand for a prompt: last, mean, or reply (the mean over a conversation's last message).")
    var at: String = "last"

    @OptionGroup var chatFormatOption: ChatFormatOption
    var chatFormat: String? { chatFormatOption.chatFormat }

    @Option(help: "Name of the direction (default: the output directory's name).")
    var name: String?

    @Option(help: "Output pack directory.")
    var out: String

    func run() throws {
        guard let point = HookPoint(name: hook) else { throw HookNameError.notAHookName(hook) }
        guard let reduction = ContrastiveDerivation.Reduction(rawValue: at) else {
            throw ValidationError("--at: expected \(ContrastiveDerivation.Reduction.allCases.map(\.rawValue).joined(separator: ", ")), found '\(at)'")
        }
        let loaded = try modelOptions.load()
        try loaded.model.info.validate(point)
        let format = try promptSetFormat(loaded, override: chatFormat)
        let pos = try PromptSet.prompts(path: positive, tokenizer: loaded.tokenizer, chatFormat: format)
        let neg = try PromptSet.prompts(path: negative, tokenizer: loaded.tokenizer, chatFormat: format)
        guard pos.count == neg.count else { throw FeatureError.pairCount(positive: pos.count, negative: neg.count) }
        if reduction == .reply {
            for (path, set) in [(positive, pos), (negative, neg)] {
                if let p = set.first(where: { $0.reply == nil }) {
                    throw FeatureError.badPairs(path: path, line: p.line,
                                                reason: "'--at reply' needs chat messages ({\"messages\": [...]}) whose last message has text")
                }
            }
        }
        // Every prompt read from a file has a fingerprint (PromptSet.prompts); the pack records them all.
        let items = DerivationItems(fingerprints: (pos + neg).compactMap(\.item))
        let vector = try ContrastiveDerivation.derive(model: loaded.model, positive: pos, negative: neg, point: point, at: reduction)
        let dirName = name ?? URL(fileURLWithPath: out).standardizedFileURL.lastPathComponent
        let direction = Direction(name: dirName, point: point, vector: vector)
        try ContrastiveDerivation.writePack(direction: direction, to: out,
                                            modelName: loaded.file.value("general.name")?.stringValue,
                                            modelPath: loaded.path, adapters: loaded.adapters.map { ($0.path, $0.scale) },
                                            positivePath: positive, negativePath: negative,
                                            pairs: pos.count, reduction: reduction, items: items)
        let norm = vector.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
        print("wrote \(out): direction '\(dirName)' at \(point.name) from \(pos.count) pairs (norm \(String(format: "%.4f", norm)))")
    }
}
