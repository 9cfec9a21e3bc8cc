// `probity features show PACK ID`: one latent's label, statistics and top contexts, tokens shaded by
// activation on a terminal (or with activations in brackets when piped); for a probe pack, the probe:
// its value, how it was trained and cross-validated, and its largest weights.

import ArgumentParser
import Foundation
import ProbityFeatures

struct FeaturesShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show a latent's label, statistics and top activating contexts, or a probe's training record.")

    @Argument(help: "The SAE or probe pack.")
    var pack: String

    @Argument(help: "The latent (its index, or its label's name), or the probe's name.")
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
        if p.probe != nil {
            guard case .probe(let probe) = try p.feature(id) else { throw FeatureError.unknownFeature(pack: p.name, name: id) }
            return try showProbe(probe, in: p)
        }
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

extension FeaturesShow {
    /// A probe: its value, its training record from the manifest's provenance, its largest weights.
    func showProbe(_ probe: Probe, in p: FeaturePack) throws {
        let provenance = p.manifest?.provenanceJSON
            .flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] } ?? [:]
        let top = probe.weights.indices.sorted { abs(probe.weights[$0]) > abs(probe.weights[$1]) }.prefix(10)
        if json {
            var o: [String: Any] = ["pack": p.name, "kind": "probe", "hook": probe.point.name, "id": probe.name,
                                    "norm": probe.norm, "bias": Double(probe.bias),
                                    "top_weights": top.map { ["index": $0, "weight": Double(probe.weights[$0])] }]
            if !provenance.isEmpty { o["provenance"] = provenance }
            print(try jsonString(o))
            return
        }
        func text(_ v: Any?) -> String {
            switch v {
            case let d as Double: return String(format: "%.3f", d)
            case let i as Int: return "\(i)"
            case let s as String: return s
            default: return "-"
            }
        }
        let n = provenance["n"] as? [String: Any] ?? [:]
        let cv = provenance["cross_validation"] as? [String: Any] ?? [:]
        let items = (provenance["items"] as? [String: Any])?["sha256"] as? [Any]
        print("probe \(probe.name) at \(probe.point.name) (pack \(p.name))")
        print("value           w·x + b (the logit); ‖w‖ \(String(format: "%.4f", probe.norm)), bias \(String(format: "%.4f", probe.bias))")
        print("trained         concept \(text(provenance["concept"])), pool \(text(provenance["pooling"])), λ \(text(provenance["l2"]).replacingOccurrences(of: ".000", with: "")), "
              + "\(text(n["positive"])) positive / \(text(n["negative"])) negative / \(text(n["benign"])) benign")
        print("cross-validated mean AUROC \(text(cv["mean_auroc"])) over \(text(cv["folds"])) folds grouped by \(text(cv["grouped_by"])) "
              + "(out of fold \(text(cv["out_of_fold_auroc"])), vs own negatives \(text(cv["out_of_fold_auroc_concept"])))")
        print("items           \(items.map { "\($0.count) fingerprints (\(ItemFingerprint.scheme)): never score this probe on them" } ?? "not recorded")")
        print("largest weights " + top.map { String(format: "%d=%+.4f", $0, probe.weights[$0]) }.joined(separator: ", "))
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
