// `probity features show PACK ID`: one latent's label, statistics and top contexts, tokens shaded by
// activation on a terminal (or with activations in brackets when piped).

import ArgumentParser
import Foundation
import ProbityFeatures

struct FeaturesShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show a latent's label, statistics and top activating contexts.")

    @Argument(help: "The SAE pack.")
    var pack: String

    @Argument(help: "The latent: its index, or its label's name.")
    var id: String

    @Option(help: "Shade tokens by activation: auto (when standard output is a terminal), always or never.")
    var color: String = "auto"

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    func run() throws {
        guard ["auto", "always", "never"].contains(color) else {
            throw ValidationError("--color: expected auto, always or never, found '\(color)'")
        }
        let p = try FeaturePack.load(path: pack)
        guard p.sae != nil else { throw FeatureError.needsSAE(pack: p.name, action: "features show") }
        guard case .latent(_, let index) = try p.feature(id) else { throw FeatureError.unknownFeature(pack: p.name, name: id) }
        let label = p.labels[latent: index]
        if json {
            var o: [String: Any] = ["pack": p.name, "hook": p.hook.name, "id": index]
            if let label {
                if let v = label.name { o["name"] = v }
                if let v = label.description { o["description"] = v }
                if let v = label.maxActivation { o["max_activation"] = Double(v) }
                if let v = label.frequency { o["frequency"] = v }
                if let v = label.contexts { o["contexts"] = v.map(contextJSON) }
                if let v = label.topExamples { o["top_examples"] = v }
            }
            if let scan = p.labels.scan { o["scan"] = scanJSON(scan) }
            print(try jsonString(o))
            return
        }
        let style: FeatureContext.Style = color == "always" || (color == "auto" && isatty(STDOUT_FILENO) != 0) ? .ansi : .plain
        print("latent \(index) of \(p.name) at \(p.hook.name)")
        print("name            \(label?.name ?? "-")")
        if let d = label?.description { print("description     \(d)") }
        print("max activation  \(label?.maxActivation.map { String(format: "%.4g", $0) } ?? "-")")
        if let f = label?.frequency {
            print("frequency       " + String(format: "%.4g%%", f * 100) + (f == 0 ? " (never active: dead)" : ""))
        } else {
            print("frequency       -")
        }
        guard let contexts = label?.contexts else {
            print("no statistics: run `probity features stats \(pack) --corpus FILE --tokens N` first")
            return
        }
        if let scan = p.labels.scan {
            print("scanned         \(scan.tokens) \(scan.split) tokens of \(scan.corpora.joined(separator: ", "))")
        }
        if contexts.isEmpty { print("no contexts: the latent never fired in the scan") }
        let scale = label?.maxActivation ?? contexts.map(\.peakActivation).max() ?? 1
        for (n, c) in contexts.enumerated() {
            let value = number(c.peakActivation)
            print(String(format: "%2d. ", n + 1) + value + String(repeating: " ", count: max(1, 8 - value.count))
                  + "\(c.source) #\(c.document)  " + c.rendered(style, scale: scale))
        }
        if let examples = label?.topExamples, !examples.isEmpty {
            print("examples        " + examples.joined(separator: " | "))
        }
    }
}

func contextJSON(_ c: FeatureContext) -> [String: Any] {
    ["source": c.source, "document": c.document, "tokens": c.tokens, "activations": c.activations.map(Double.init),
     "peak_index": c.peakIndex, "peak_activation": Double(c.peakActivation), "text": c.text]
}

func scanJSON(_ s: FeatureScanRecord) -> [String: Any] {
    var model: [String: Any] = [:]
    if let v = s.modelName { model["name"] = v }
    if let v = s.modelSHA256 { model["gguf_sha256"] = v }
    return ["corpora": s.corpora, "split": s.split, "tokens": s.tokens, "window": s.window, "hook": s.hook, "model": model,
            "before": s.before, "after": s.after, "contexts_per_latent": s.contextsPerLatent]
}
