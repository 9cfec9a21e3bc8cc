// `probity features activations`: for each token of a text, its top SAE features with their
// activations and labels and the reconstruction's relative squared error ‖x − x̂‖²/‖x‖², then the
// FVU over the text's positions (non-special, after the first; centred on their mean); for a
// directions pack, each token's projection on each direction; for a probe pack, each token's probe
// value w·x + b.

import ArgumentParser
import Foundation
import ProbityFeatures
import ProbityLM

struct FeaturesActivations: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "activations",
                                                    abstract: "Show the active features of each token of a text.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var packOptions: PackOptions

    @Option(help: "The text to run.")
    var text: String

    @Option(help: "Features to show per token.")
    var top: Int = 5

    @Flag(help: "Parse special tokens such as <|im_start|> in the text.")
    var parseSpecial = false

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    func validate() throws {
        if packOptions.pack == nil { throw ValidationError("missing --pack: the feature pack whose features to show") }
        if top < 0 { throw ValidationError("--top must be 0 or more, found \(top)") }
    }

    func run() throws {
        let loaded = try modelOptions.load()
        guard let (pack, mismatch) = try packOptions.load(for: loaded) else { return }
        let tokens = loaded.tokenizer.encode(text, addSpecial: true, parseSpecial: parseSpecial)
        guard !tokens.isEmpty else { throw FeatureError.emptyPrompt }
        if let probe = pack.probe {
            return try showProbe(probe, pack: pack, loaded: loaded, tokens: tokens, mismatch: mismatch)
        }
        guard let binding = pack.binding else {
            return try showProjections(pack, loaded: loaded, tokens: tokens, mismatch: mismatch)
        }
        let plan = FeaturePlan()
        let monitor = plan.monitor(binding, top: top, counts: countsForFVU(loaded.tokenizer))
        let hooks = HookSet()
        try plan.attach(to: hooks, model: loaded.model.info)
        let session = try loaded.model.makeSession(capacity: tokens.count)
        _ = try session.forward(tokens, hooks: hooks, logits: .none)

        // The prompt's positions (a forward pass without generation has no others).
        let tally = monitor.promptTally
        if json {
            let rows: [[String: Any]] = try monitor.records.map { r in
                ["position": r.position, "token": r.token, "piece": try loaded.tokenizer.piece(r.token),
                 "relative_squared_error": r.relativeError ?? .nan, "l0": r.l0,
                 "features": r.latents.map { l -> [String: Any] in
                     var o: [String: Any] = ["id": l.index, "activation": Double(l.activation)]
                     if let label = pack.labels[latent: l.index] {
                         if let n = label.name { o["name"] = n }
                         if let m = label.maxActivation { o["max_activation"] = Double(m) }
                     }
                     return o
                 }]
            }
            var o: [String: Any] = ["pack": pack.name, "hook": binding.point.name, "tokens": rows,
                                    "positions": tally.count, "fvu": tally.fvu ?? .nan]
            if let mismatch { o["model_mismatch"] = mismatch }
            print(try jsonString(o))
            return
        }
        if let mismatch { print("note: model mismatch allowed: \(mismatch)") }
        for r in monitor.records {
            let piece = try loaded.tokenizer.piece(r.token)
            let feats = r.latents.map { l -> String in
                let name = pack.labels[latent: l.index]?.name.map { " \"\($0)\"" } ?? ""
                return String(format: "%d=%.3f", l.index, l.activation) + name
            }
            let shown = piece.debugDescription
            let padded = shown + String(repeating: " ", count: max(0, 14 - shown.count))
            print(String(format: "%4d ", r.position) + padded + String(format: " rse %.3f  l0 %4d  ", r.relativeError ?? .nan, r.l0)
                  + feats.joined(separator: ", "))
        }
        print("FVU " + (tally.fvu.map { String(format: "%.4f", $0) } ?? "n/a")
              + " over \(tally.count) positions (non-special, after the first; centred on their mean); rse: ‖x − x̂‖²/‖x‖² per position")
    }

    /// For a probe pack: each token's probe value w·x + b, read as rules read it.
    func showProbe(_ probe: Probe, pack: FeaturePack, loaded: LoadedModel, tokens: [Int], mismatch: String?) throws {
        let plan = FeaturePlan()
        let watch = try plan.monitor(probe)
        let hooks = HookSet()
        try plan.attach(to: hooks, model: loaded.model.info)
        let session = try loaded.model.makeSession(capacity: tokens.count)
        _ = try session.forward(tokens, hooks: hooks, logits: .none)
        if json {
            let rows: [[String: Any]] = try watch.records.map { r in
                ["position": r.position, "token": r.token, "piece": try loaded.tokenizer.piece(r.token), "value": Double(r.value)]
            }
            var o: [String: Any] = ["pack": pack.name, "probe": probe.name, "hook": probe.point.name, "tokens": rows]
            if let mismatch { o["model_mismatch"] = mismatch }
            print(try jsonString(o))
            return
        }
        if let mismatch { print("note: model mismatch allowed: \(mismatch)") }
        for r in watch.records {
            let shown = try loaded.tokenizer.piece(r.token).debugDescription
            let padded = shown + String(repeating: " ", count: max(0, 14 - shown.count))
            print(String(format: "%4d ", r.position) + padded + " \(probe.name)=" + String(format: "%.4f", r.value))
        }
    }

    /// For a directions pack: each token's projection on each direction.
    func showProjections(_ pack: FeaturePack, loaded: LoadedModel, tokens: [Int], mismatch: String?) throws {
        let plan = FeaturePlan()
        let watches = try pack.directions.map { try plan.monitor($0) }
        let hooks = HookSet()
        try plan.attach(to: hooks, model: loaded.model.info)
        let session = try loaded.model.makeSession(capacity: tokens.count)
        _ = try session.forward(tokens, hooks: hooks, logits: .none)
        if json {
            let rows: [[String: Any]] = try tokens.indices.map { i in
                ["position": i, "token": tokens[i], "piece": try loaded.tokenizer.piece(tokens[i]),
                 "projections": Dictionary(uniqueKeysWithValues: watches.map { ($0.direction.name, Double($0.records[i].projection)) })]
            }
            var o: [String: Any] = ["pack": pack.name, "tokens": rows]
            if let mismatch { o["model_mismatch"] = mismatch }
            print(try jsonString(o))
            return
        }
        if let mismatch { print("note: model mismatch allowed: \(mismatch)") }
        for i in tokens.indices {
            let shown = try loaded.tokenizer.piece(tokens[i]).debugDescription
            let padded = shown + String(repeating: " ", count: max(0, 14 - shown.count))
            let values = watches.map { "\($0.direction.name)=" + String(format: "%.3f", $0.records[i].projection) }
            print(String(format: "%4d ", i) + padded + " " + values.joined(separator: ", "))
        }
    }
}
