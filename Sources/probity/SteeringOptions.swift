// The steering options `steer`, `logits` and `activations` share: a pack, one flag per built-in
// action, `--edit ACTION:FEATURE[=VALUE]` for any action in the registry, and control vectors. Every
// edit is built through `ActionRegistry.standard`, so a newly registered action needs no flag here.

import ArgumentParser
import Foundation
import ProbityFeatures
import ProbityLM

/// One feature edit as the user wrote it: the action's name, `F` or `F=V`, and the flag it came
/// from (named in messages about its shape).
struct SteeringEdit: Equatable {
    var action: String
    var argument: String
    var flag: String

    /// Reads `--edit ACTION:FEATURE=VALUE` (or `ACTION:FEATURE`); the action must be registered.
    init(edit text: String, registry: ActionRegistry = .standard) throws {
        guard let colon = text.firstIndex(of: ":"), colon != text.startIndex else {
            throw ValidationError("--edit: expected ACTION:FEATURE=VALUE or ACTION:FEATURE, found '\(text)'")
        }
        let name = String(text[..<colon])
        guard registry.action(commandLineName: name) != nil else {
            throw ValidationError("--edit: unknown action '\(name)' in '\(text)' (known: \(registry.names.joined(separator: ", ")))")
        }
        self.init(action: name, argument: String(text[text.index(after: colon)...]), flag: "--edit \(name)")
    }

    init(action: String, argument: String, flag: String) {
        self.action = action
        self.argument = argument
        self.flag = flag
    }
}

/// What the steering options stand for once the model is loaded: the interventions, in the order
/// they apply, and the pack's model-mismatch note when the user allowed one.
struct Steering {
    var interventions: [Intervention]
    var mismatch: String?

    /// The interventions attached to a fresh hook set; nil when there are none, so an unsteered
    /// run takes the model's plain path.
    func hooks(model: ModelInfo) throws -> (HookSet, FeaturePlan)? {
        try attachedHooks(interventions, model: model)
    }
}

/// `--pack`, the edit flags, `--edit` and `--control-vector`.
struct SteeringOptions: ParsableArguments {
    @OptionGroup var controlVectorOptions: ControlVectorOptions

    @OptionGroup var packOptions: PackOptions
    var pack: String? { packOptions.pack }

    @Option(help: "Set a feature to a value: F=V (V may be Nx: N times its max activation). Repeatable.")
    var clamp: [String] = []

    @Option(help: "Multiply a feature: F=X. Repeatable.")
    var scale: [String] = []

    @Option(help: "Set a feature to 0: F. Repeatable.")
    var ablate: [String] = []

    @Option(help: "Cap a feature: F=V (min(f, V)). Repeatable.")
    var cap: [String] = []

    @Option(help: "Add a direction or a latent's decoder row: NAME=A (A times it). Repeatable.")
    var add: [String] = []

    @Option(name: .customLong("project-out"), help: "Remove the component along a direction or decoder row: F. Repeatable.")
    var projectOut: [String] = []

    @Option(help: ArgumentHelp(
        "Any registered action: ACTION:F=V, or ACTION:F for one without a value (\(ActionRegistry.standard.names.joined(separator: ", "))). Repeatable; applied after the flags above.",
        valueName: "action:f[=v]"))
    var edit: [String] = []

    /// Every feature edit: the per-action flags in the order above (as `steer` has always applied
    /// them), then `--edit` in the order given.
    func edits() throws -> [SteeringEdit] {
        let flags: [(String, String, [String])] = [
            ("clamp", "--clamp", clamp), ("scale", "--scale", scale), ("ablate", "--ablate", ablate),
            ("cap", "--cap", cap), ("add", "--add", add), ("project_out", "--project-out", projectOut),
        ]
        let fromFlags = flags.flatMap { action, flag, arguments in
            arguments.map { SteeringEdit(action: action, argument: $0, flag: flag) }
        }
        return fromFlags + (try edit.map { try SteeringEdit(edit: $0) })
    }

    /// Whether any edit or control vector was given.
    var isEmpty: Bool {
        clamp.isEmpty && scale.isEmpty && ablate.isEmpty && cap.isEmpty && add.isEmpty && projectOut.isEmpty
            && edit.isEmpty && controlVectorOptions.controlVectors.isEmpty
    }

    func validate() throws {
        // Unknown `--edit` actions are named before anything loads.
        let edits = try edits()
        if !edits.isEmpty && pack == nil { throw ValidationError("feature edits need --pack") }
    }

    /// Loads the pack (checked against the model) and the control vectors, and builds every edit.
    func steering(for loaded: LoadedModel) throws -> Steering {
        var interventions: [Intervention] = []
        var mismatch: String?
        if let loadedPack = try packOptions.load(for: loaded) {
            let pack = loadedPack.0
            mismatch = loadedPack.1
            for e in try edits() {
                interventions.append(try pack.intervention(e.action, e.argument, flag: e.flag))
            }
        }
        interventions += try controlVectorOptions.interventions(for: loaded.model.info)
        return Steering(interventions: interventions, mismatch: mismatch)
    }
}

/// Writes the note that a pack made for another model was used (text output; JSON records it).
func noteModelMismatch(_ mismatch: String?) {
    if let mismatch { FileHandle.standardError.write(Data("note: model mismatch allowed: \(mismatch)\n".utf8)) }
}
