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
    @OptionGroup var steering: SteeringOptions

    @Flag(help: "Also generate without steering and print both.")
    var compare = false

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    func validate() throws {
        if steering.isEmpty {
            throw ValidationError("nothing to steer with: give an edit (--clamp, --scale, --ablate, --cap, --add, --project-out, --edit) or --control-vector")
        }
    }

    func run() throws {
        let loaded = try modelOptions.load()
        let setup = try steering.steering(for: loaded)
        let interventions = setup.interventions
        guard let attached = try setup.hooks(model: loaded.model.info) else { return }
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
            if let mismatch = setup.mismatch { o["model_mismatch"] = mismatch }
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
        noteModelMismatch(setup.mismatch)
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
