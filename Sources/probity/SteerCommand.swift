// `probity steer`: generate with feature edits (SAE latents or directions from a pack) and control
// vectors attached at every step; `--compare` also prints the unsteered generation.

import ArgumentParser
import Foundation
import ProbityFeatures
import ProbityLM

struct Steer: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generate with features clamped, scaled, ablated or added.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var promptOptions: PromptOptions
    @OptionGroup var sampling: SamplingArguments
    @OptionGroup var controlVectorOptions: ControlVectorOptions

    @OptionGroup var packOptions: PackOptions
    var pack: String? { packOptions.pack }
    var allowModelMismatch: Bool { packOptions.allowModelMismatch }

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

    @Flag(help: "Also generate without steering and print both.")
    var compare = false

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    var edits: [(String, String)] {
        clamp.map { ("clamp", $0) } + scale.map { ("scale", $0) } + ablate.map { ("ablate", $0) }
            + cap.map { ("cap", $0) } + add.map { ("add", $0) } + projectOut.map { ("project_out", $0) }
    }

    func validate() throws {
        if !edits.isEmpty && pack == nil { throw ValidationError("feature edits need --pack") }
        if edits.isEmpty && controlVectorOptions.controlVectors.isEmpty {
            throw ValidationError("nothing to steer with: give an edit (--clamp, --scale, --ablate, --cap, --add, --project-out) or --control-vector")
        }
    }

    func run() throws {
        let loaded = try modelOptions.load()
        let info = loaded.model.info
        var interventions: [Intervention] = []
        var mismatch: String?
        if let pack {
            let p = try loadPack(pack, for: loaded, allowModelMismatch: allowModelMismatch)
            mismatch = p.1
            for (action, arg) in edits { interventions.append(try p.0.intervention(action, arg)) }
        }
        interventions += try controlVectorOptions.interventions(for: info)
        guard let attached = try attachedHooks(interventions, model: info) else { return }
        let (hooks, plan) = attached
        let prompt = try promptOptions.tokens(for: loaded)
        let generator = Generator(model: loaded.model, tokenizer: loaded.tokenizer)
        let stream = !json && !compare
        let steered = try generator.generate(prompt: prompt, options: sampling.options, hooks: hooks) { text in
            if stream { writeOut(text) }
        }
        let edited = plan.applications.reduce(0, +)
        let plain = compare ? try generator.generate(prompt: prompt, options: sampling.options) : nil
        if json {
            var o: [String: Any] = ["steered": steered.text, "steered_tokens": steered.tokens,
                                    "finish_reason": steered.finishReason.rawValue, "edited_positions": edited,
                                    "interventions": interventions.map { "\($0.action.brief) \($0.target.label) at \($0.point.name)" }]
            if let plain { o["unsteered"] = plain.text; o["unsteered_tokens"] = plain.tokens }
            if let mismatch { o["model_mismatch"] = mismatch }
            print(try jsonString(o))
            return
        }
        if stream {
            writeOut("\n")
        } else {
            let header = "steered (\(interventions.count) intervention(s), \(edited) position edits)"
            if let plain {
                print(sideBySide(header, steered.text, "unsteered", plain.text, width: 50))
            } else {
                print("--- " + header)
                print(steered.text)
            }
        }
        if let mismatch { FileHandle.standardError.write(Data("note: model mismatch allowed: \(mismatch)\n".utf8)) }
    }
}

/// Two texts in two columns of `width` characters, wrapped at spaces where possible.
func sideBySide(_ leftTitle: String, _ left: String, _ rightTitle: String, _ right: String, width: Int) -> String {
    func wrap(_ text: String) -> [String] {
        var lines: [String] = []
        for paragraph in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var line = ""
            for word in paragraph.split(separator: " ", omittingEmptySubsequences: false) {
                var w = String(word)
                while w.count > width {
                    if !line.isEmpty { lines.append(line); line = "" }
                    lines.append(String(w.prefix(width)))
                    w = String(w.dropFirst(width))
                }
                if line.isEmpty { line = w } else if line.count + 1 + w.count <= width { line += " " + w } else {
                    lines.append(line)
                    line = w
                }
            }
            lines.append(line)
        }
        return lines
    }
    func pad(_ s: String) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
    let a = [leftTitle, String(repeating: "-", count: min(width, leftTitle.count))] + wrap(left)
    let b = [rightTitle, String(repeating: "-", count: min(width, rightTitle.count))] + wrap(right)
    return (0..<max(a.count, b.count)).map { i in
        pad(i < a.count ? a[i] : "") + " | " + (i < b.count ? b[i] : "")
    }.joined(separator: "\n")
}
