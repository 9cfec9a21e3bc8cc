// `probity activations`: the activations at one hook point for every position of a text, optionally
// with features edited on the forward pass as `steer` edits them.

import ArgumentParser
import Foundation
import ProbityFeatures
import ProbityFormats
import ProbityLM
import ProbityTensor

struct Activations: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record the activations at one hook point (shape [positions, d_model]).",
        discussion: """
            --json prints the tokens, their pieces and the activations. The steering options edit the \
            forward pass as `steer` does, at every position; the activations are recorded after the \
            edits at the hook point.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Hook point, e.g. blocks.15.hook_resid_post (TransformerLens names).")
    var hook: String

    @Option(help: "The text to run.")
    var text: String

    @Flag(help: "Parse special tokens such as <|im_start|> in the text.")
    var parseSpecial = false

    @Option(help: "Write float32 activations to this .npy file.")
    var npy: String?

    @OptionGroup var steering: SteeringOptions

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    func run() throws {
        guard let point = HookPoint(name: hook) else { throw HookNameError.notAHookName(hook) }
        let loaded = try modelOptions.load()
        try loaded.model.info.validate(point)
        let tokens = loaded.tokenizer.encode(text, addSpecial: true, parseSpecial: parseSpecial)
        guard !tokens.isEmpty else { throw GenerationError.emptyPrompt }
        let width = loaded.model.info.width
        var recorded: [Float] = []
        recorded.reserveCapacity(tokens.count * width)
        let setup = try steering.steering(for: loaded)
        // The edits are attached first: hooks at one point run in the order attached, so the
        // recorder sees the activations as the rest of the model does.
        let hooks = try setup.hooks(model: loaded.model.info)?.0 ?? HookSet()
        hooks.attach(at: point) { acts in
            recorded.append(contentsOf: UnsafeBufferPointer(start: acts.values, count: acts.count * acts.width))
        }
        let session = try loaded.model.makeSession(capacity: tokens.count)
        _ = try session.forward(tokens, hooks: hooks, logits: .none)
        if let npy { try NPY.write(recorded, shape: [tokens.count, width], to: npy) }
        if json {
            let rows = (0..<tokens.count).map { i in recorded[(i * width)..<((i + 1) * width)].map(Double.init) }
            let pieces = try tokens.map { try loaded.tokenizer.piece($0) }
            var object: [String: Any] = ["hook": point.name, "shape": [tokens.count, width],
                                         "tokens": tokens, "pieces": pieces, "values": rows]
            if let mismatch = setup.mismatch { object["model_mismatch"] = mismatch }
            print(try jsonString(object))
        } else if npy == nil {
            for (i, t) in tokens.enumerated() {
                let row = recorded[(i * width)..<((i + 1) * width)]
                let norm = row.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
                let piece = try loaded.tokenizer.piece(t)
                print(String(format: "%4d %6d  norm %9.4f  ", i, t, norm) + piece.debugDescription)
            }
        }
        if !json { noteModelMismatch(setup.mismatch) }
    }
}

enum HookNameError: BadInput {
    case notAHookName(String)

    var description: String {
        switch self {
        case let .notAHookName(name):
            return "--hook: '\(name)' is not a hook name (expected hook_embed, blocks.L.hook_resid_pre|attn_out|resid_mid|mlp_out|resid_post, or ln_final.hook_normalized)"
        }
    }
}
