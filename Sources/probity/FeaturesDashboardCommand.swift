// `probity features dashboard PACK --out DIR`: static HTML pages for an SAE pack's latents (an index
// searchable by label and id, one page per latent), made from the pack's labels, the model's output
// head and the rules that use the latents. No server: open DIR/index.html.

import ArgumentParser
import Foundation
import ProbityFeatures
import ProbityHTML
import ProbityLM
import ProbityRules

struct FeaturesDashboard: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Write static HTML pages for an SAE pack's latents: an index with search, and one page per latent.")

    @Argument(help: "The SAE pack (a directory with pack.json, or a SAELens directory).")
    var pack: String

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Latents to show, by index or label name, comma-separated (default: --top).")
    var latents: String?

    @Option(help: "Show the N latents active most often in the labels' statistics scan, and every named latent (default: 100).")
    var top: Int?

    @Option(parsing: .upToNextOption, help: "Rule files or directories whose rules the pages list (default: rules, when there).")
    var rules: [String] = []

    @Option(help: "The directory to write the pages into.")
    var out: String

    @OptionGroup var mismatchOption: ModelMismatchOption

    func run() throws {
        guard latents == nil || top == nil else { throw ValidationError("give --latents or --top, not both") }
        let top = self.top ?? 100
        guard top >= 1 else { throw ValidationError("--top: expected at least 1, found \(top)") }
        let ids = try latents.map { text -> [String] in
            let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard !parts.contains(where: \.isEmpty) else { throw ValidationError("--latents: expected ids separated by commas, found '\(text)'") }
            return parts
        }
        let loaded = try modelOptions.load()
        let (featurePack, _) = try loadPack(pack, for: loaded, allowModelMismatch: mismatchOption.allowModelMismatch)
        let chosen = try FeatureDashboard.select(pack: featurePack, ids: ids, top: top)
        guard let llama = loaded.model as? LlamaModel else {
            throw ValidationError("\(loaded.path): the output head of this architecture is not readable (Llama-family models only)")
        }
        let effects = FeatureDashboard.logitEffects(pack: featurePack, model: llama, tokenizer: loaded.tokenizer, latents: chosen)
        let ruleFiles = rules.isEmpty ? (FileManager.default.fileExists(atPath: "rules") ? ["rules"] : []) : rules
        var byLatent: [Int: [DashboardRule]] = [:]
        if !ruleFiles.isEmpty {
            let compiled = try CompiledRules.compile(files: ruleFiles, model: loaded, allowModelMismatch: mismatchOption.allowModelMismatch)
            byLatent = FeatureDashboard.rules(compiled, packPath: pack)
        }
        var extras: [Int: LatentExtras] = [:]
        for i in chosen {
            extras[i] = LatentExtras(promoted: effects[i]?.promoted ?? [], suppressed: effects[i]?.suppressed ?? [], rules: byLatent[i] ?? [])
        }
        let pages = try FeatureDashboard.write(pack: featurePack, latents: chosen, extras: extras, to: out)
        print("dashboard: \(pages) pages in \(out) (open \(out)/index.html)")
    }
}
