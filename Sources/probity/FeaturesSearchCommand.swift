// `probity features search PACK`: latents whose top contexts contain some words near their peak
// (`--text`, from the labels `features stats` wrote), or latents most differentially active between
// two prompt sets (`--positive`/`--negative`: mean difference, Welch's t, Cohen's d).

import ArgumentParser
import Foundation
import ProbityFeatures
import ProbityLM

struct FeaturesSearch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Find latents by words in their top contexts, or by differential activation on two prompt sets.",
        discussion: """
            --text matches the words (case-insensitive) in each latent's top contexts, on or within 2 tokens \
            of the peak; a latent scores the sum, over matching contexts, of the context's peak over its \
            strongest context's. Run `probity features stats` first.
            --positive/--negative run every prompt (JSONL lines {"text": ...}, {"prompt": ...}, \
            {"messages": [...]} or a JSON string; .txt: one prompt per line), reduce each latent over the \
            prompt's non-special tokens (--aggregate), and rank latents by Welch's t of positive minus negative.
            """)

    @Argument(help: "The SAE pack.")
    var pack: String

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Words to find in the latents' top contexts.")
    var text: String?

    @Option(help: "Prompts the latents should fire on (JSONL or .txt).")
    var positive: String?

    @Option(help: "Prompts to contrast with (JSONL or .txt).")
    var negative: String?

    @Option(help: "Per prompt and latent: max or mean over the prompt's non-special tokens.")
    var aggregate: String = "max"

    @Option(help: "Latents to list.")
    var top: Int = 20

    @OptionGroup var chatFormatOption: ChatFormatOption
    var chatFormat: String? { chatFormatOption.chatFormat }

    @OptionGroup var mismatchOption: ModelMismatchOption
    var allowModelMismatch: Bool { mismatchOption.allowModelMismatch }

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    func validate() throws {
        let differential = positive != nil || negative != nil
        if (text != nil) == differential {
            throw ValidationError("give either --text WORDS or both --positive and --negative")
        }
        if differential && (positive == nil || negative == nil) {
            throw ValidationError("--positive and --negative go together")
        }
        if top < 1 { throw ValidationError("--top must be at least 1, found \(top)") }
        if FeatureSearch.Aggregate(rawValue: aggregate) == nil {
            throw ValidationError("--aggregate: expected max or mean, found '\(aggregate)'")
        }
    }

    func run() throws {
        let p = try FeaturePack.load(path: pack)
        guard p.sae != nil else { throw FeatureError.needsSAE(pack: p.name, action: "features search") }
        if let text { return try searchText(text, p) }
        try searchDifferential(p)
    }

    func searchText(_ query: String, _ p: FeaturePack) throws {
        let hits = try FeatureSearch.text(query, in: p.labels, path: p.labelsPath)
        let shown = hits.prefix(top)
        if json {
            let rows: [[String: Any]] = shown.enumerated().map { n, h in
                var o: [String: Any] = ["rank": n + 1, "id": h.latent, "score": h.score, "matching_contexts": h.matchingContexts,
                                        "contexts": h.contexts, "example": contextJSON(h.example)]
                let label = p.labels[latent: h.latent]
                if let v = label?.name { o["name"] = v }
                if let v = label?.frequency { o["frequency"] = v }
                if let v = label?.maxActivation { o["max_activation"] = Double(v) }
                return o
            }
            print(try jsonString(["pack": p.name, "text": query, "matches": hits.count, "results": rows]))
            return
        }
        print("\(hits.count) latent\(hits.count == 1 ? "" : "s") of \(p.name) with \"\(query)\" near the peak of a top context")
        if shown.isEmpty { return }
        print("rank  latent  score  contexts  frequency   max      name")
        for (n, h) in shown.enumerated() {
            let label = p.labels[latent: h.latent]
            print(String(format: "%4d  %6d  %5.2f  %3d/%-4d  ", n + 1, h.latent, h.score, h.matchingContexts, h.contexts)
                  + pad(percent(label?.frequency), 10) + "  " + pad(number(label?.maxActivation), 7) + "  " + (label?.name ?? "-"))
            print("      " + h.example.rendered(.plain, scale: label?.maxActivation ?? h.example.peakActivation))
        }
    }

    func searchDifferential(_ p: FeaturePack) throws {
        guard let positive, let negative, let sae = p.sae, let reduce = FeatureSearch.Aggregate(rawValue: aggregate) else { return }
        let loaded = try modelOptions.load()
        let mismatch = try p.checkCompatibility(model: loaded.model.info, modelPath: loaded.path,
                                                modelName: try loaded.file.optionalString("general.name"),
                                                allowModelMismatch: allowModelMismatch)
        let format = try promptSetFormat(loaded, override: chatFormat)
        let pos = try PromptSet.load(path: positive, tokenizer: loaded.tokenizer, chatFormat: format)
        let neg = try PromptSet.load(path: negative, tokenizer: loaded.tokenizer, chatFormat: format)
        let hits = try FeatureSearch.differential(sae: sae, model: loaded.model, tokenizer: loaded.tokenizer, point: p.hook,
                                                  positive: pos, negative: neg, aggregate: reduce)
        let shown = hits.prefix(top)
        if json {
            let rows: [[String: Any]] = shown.enumerated().map { n, h in
                var o: [String: Any] = ["rank": n + 1, "id": h.latent, "mean_positive": h.comparison.meanA,
                                        "mean_negative": h.comparison.meanB, "difference": h.difference,
                                        "t": jsonNumber(h.t), "cohens_d": jsonNumber(h.cohensD)]
                let label = p.labels[latent: h.latent]
                if let v = label?.name { o["name"] = v }
                if let v = label?.frequency { o["frequency"] = v }
                if let v = label?.maxActivation { o["max_activation"] = Double(v) }
                return o
            }
            var o: [String: Any] = ["pack": p.name, "hook": p.hook.name, "aggregate": reduce.rawValue,
                                    "positive": ["file": positive, "prompts": pos.count], "negative": ["file": negative, "prompts": neg.count],
                                    "results": rows]
            if let mismatch { o["model_mismatch"] = mismatch }
            print(try jsonString(o))
            return
        }
        if let mismatch { print("note: model mismatch allowed: \(mismatch)") }
        print("\(p.name) at \(p.hook.name): \(pos.count) positive vs \(neg.count) negative prompts, "
              + "\(reduce.rawValue) over each prompt's non-special tokens, ranked by Welch's t")
        print("rank  latent        t       d    mean+    mean-     diff  frequency   name")
        for (n, h) in shown.enumerated() {
            let label = p.labels[latent: h.latent]
            print(String(format: "%4d  %6d  %7.2f  %6.2f  %7.3f  %7.3f  %7.3f  ", n + 1, h.latent, h.t, h.cohensD,
                         h.comparison.meanA, h.comparison.meanB, h.difference)
                  + pad(percent(label?.frequency), 10) + "  " + (label?.name ?? "-"))
        }
    }
}

/// A finite number, or "inf"/"-inf" (JSON has no infinities).
func jsonNumber(_ v: Double) -> Any {
    v.isFinite ? v : (v > 0 ? "inf" : "-inf")
}

func percent(_ f: Double?) -> String { f.map { String(format: "%.3g%%", $0 * 100) } ?? "-" }

func pad(_ s: String, _ width: Int) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }

/// A number as the labels file writes activations (3 significant digits), or "-".
func number(_ v: Float?) -> String { v.map { String(format: "%.3g", Double($0)) } ?? "-" }
