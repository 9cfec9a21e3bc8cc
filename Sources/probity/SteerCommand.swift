// `probity steer`: generate with feature edits (SAE latents or directions from a pack) and control
// vectors attached at every step; `--compare` also prints the unsteered generation. Ctrl-C stops it
// between tokens: what was generated is printed and the exit code is 130.

import ArgumentParser
import Foundation
import ProbityFeatures
import ProbityLM

struct Steer: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate with features clamped, scaled, ablated or added.",
        discussion: """
            Ctrl-C stops generation between tokens; what was generated is printed (finish reason \
            "interrupted"; with --compare the unsteered run is skipped, or cut short) and the exit code is 130.
            """)

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
        // Caught from the start, so that a Ctrl-C while the model loads still ends with code 130.
        try catchingInterrupts { flag in try run(interrupted: flag) }
    }

    private func run(interrupted flag: InterruptFlag) throws {
        let loaded = try modelOptions.load()
        let setup = try steering.steering(for: loaded)
        let interventions = setup.interventions
        guard let attached = try setup.hooks(model: loaded.model.info) else { return }
        let (hooks, plan) = attached
        let prompt = try promptOptions.tokens(for: loaded)
        let generator = Generator(model: loaded.model, tokenizer: loaded.tokenizer)
        let stream = !json && !compare
        let steered = try generator.generate(prompt: prompt, options: sampling.options, hooks: hooks,
                                             onText: { text in if stream { writeOut(text) } },
                                             interrupted: { flag.isSet })
        let edited = plan.applications.reduce(0, +)
        // A user who stopped the steered run does not want a second one started.
        let plain = compare && steered.finishReason != .interrupted
            ? try generator.generate(prompt: prompt, options: sampling.options, interrupted: { flag.isSet }) : nil
        let interrupted = steered.finishReason == .interrupted || plain?.finishReason == .interrupted
        if json {
            var o: [String: Any] = ["steered": steered.text, "steered_tokens": steered.tokens,
                                    "finish_reason": steered.finishReason.rawValue, "edited_positions": edited,
                                    "interventions": interventions.map { "\($0.action.brief) \($0.target.label) at \($0.point.name)" }]
            if let plain { o["unsteered"] = plain.text; o["unsteered_tokens"] = plain.tokens }
            if let mismatch = setup.mismatch { o["model_mismatch"] = mismatch }
            print(try jsonString(o))
            if interrupted { throw interruptedExit() }
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
        if interrupted { throw interruptedExit() }
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
