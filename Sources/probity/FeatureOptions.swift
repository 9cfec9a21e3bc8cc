// Option groups shared by the feature commands: loading a pack checked against the model,
// llama.cpp-style `--control-vector FILE[:SCALE]`, and the chat format prompt sets render with.

import ArgumentParser
import Foundation
import ProbityFeatures
import ProbityLM

/// `--pack`: a feature pack given by option (commands that read only a pack take it as an argument).
struct PackOption: ParsableArguments {
    @Option(help: "A feature pack: a directory with pack.json, or a SAELens directory (cfg.json + sae_weights.safetensors).")
    var pack: String?
}

/// `--allow-model-mismatch`: use packs made for another model, recording the mismatch.
struct ModelMismatchOption: ParsableArguments {
    @Flag(help: "Use a pack made for another model; the output records the mismatch.")
    var allowModelMismatch = false
}

/// A pack checked against the model: `--pack` and `--allow-model-mismatch`.
struct PackOptions: ParsableArguments {
    @OptionGroup var packOption: PackOption
    @OptionGroup var mismatchOption: ModelMismatchOption

    var pack: String? { packOption.pack }
    var allowModelMismatch: Bool { mismatchOption.allowModelMismatch }

    /// The pack checked against `loaded` and its mismatch note; nil without `--pack`.
    func load(for loaded: LoadedModel) throws -> (FeaturePack, String?)? {
        guard let pack else { return nil }
        return try loadPack(pack, for: loaded, allowModelMismatch: allowModelMismatch)
    }
}

/// Loads a pack and checks it against `loaded` before any token runs. Returns the pack and the
/// mismatch note, if the user allowed one.
func loadPack(_ path: String, for loaded: LoadedModel, allowModelMismatch: Bool) throws -> (FeaturePack, String?) {
    let pack = try FeaturePack.load(path: path)
    let note = try pack.checkCompatibility(model: loaded.model.info, modelPath: loaded.path,
                                           modelName: loaded.file.value("general.name")?.stringValue,
                                           allowModelMismatch: allowModelMismatch)
    return (pack, note)
}

struct ControlVectorOptions: ParsableArguments {
    @Option(name: .customLong("control-vector"),
            help: "Add a llama.cpp control vector, FILE.gguf or FILE.gguf:SCALE (repeatable; vectors add up).")
    var controlVectors: [String] = []

    /// The interventions the control vectors stand for, checked against the model.
    func interventions(for info: ModelInfo) throws -> [Intervention] {
        var out: [Intervention] = []
        for arg in controlVectors {
            let (path, strength) = try ControlVector.parseArgument(arg)
            let cv = try ControlVector.load(path: path)
            try cv.validate(for: info, path: path)
            out += cv.interventions(strength: strength, name: URL(fileURLWithPath: path).lastPathComponent)
        }
        return out
    }
}

/// A plan holding `interventions`, attached to a fresh hook set (nil when there is nothing to do).
func attachedHooks(_ interventions: [Intervention], model: ModelInfo) throws -> (HookSet, FeaturePlan)? {
    guard !interventions.isEmpty else { return nil }
    let plan = FeaturePlan()
    for iv in interventions { try plan.add(iv) }
    let hooks = HookSet()
    try plan.attach(to: hooks, model: model)
    return (hooks, plan)
}

/// The chat format prompt sets render `{"messages": [...]}` lines with: `--chat-format` (an unknown
/// name is an error), else the model's template; nil when the model has none, so that only chat
/// lines fail, each with its own message.
func promptSetFormat(_ loaded: LoadedModel, override: String?) throws -> ChatFormat? {
    if let override { return try ChatFormat.named(override) }
    return try? ChatTemplate.format(for: loaded.file, override: nil)
}
