// `probity logits`: next-token logits for a text, as top-K JSON or a numpy .npy file, optionally
// with features edited on the forward pass as `steer` edits them.

import ArgumentParser
import Foundation
import ProbityFeatures
import ProbityFormats
import ProbityLM
import ProbityTensor

struct Logits: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compute next-token logits for a text.",
        discussion: "The steering options edit the forward pass as `steer` does: at every position of the text.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "The text to evaluate.")
    var text: String

    @Flag(help: "Parse special tokens such as <|im_start|> in the text.")
    var parseSpecial = false

    @Flag(help: "Put the BOS token first.")
    var addBOS = false

    @Option(help: "How many of the most likely tokens to print.")
    var top: Int = 10

    @Option(help: "Write float32 logits to this .npy file: shape [vocab], or [positions, vocab] with --all-positions.")
    var npy: String?

    @Flag(help: "Compute the logits of every position, not just the last.")
    var allPositions = false

    @Flag(help: "Run the text one position at a time, as decoding does (its kernels), instead of as one prompt.")
    var stepwise = false

    @OptionGroup var kernelLevel: KernelLevelOption

    @OptionGroup var steering: SteeringOptions

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    func validate() throws {
        if top < 0 { throw ValidationError("--top must be 0 or more, found \(top)") }
    }

    func run() throws {
        try kernelLevel.apply()
        let loaded = try modelOptions.load()
        var tokens = loaded.tokenizer.encode(text, addSpecial: false, parseSpecial: parseSpecial)
        if addBOS, let bos = loaded.tokenizer.bosID { tokens.insert(bos, at: 0) }
        guard !tokens.isEmpty else { throw GenerationError.emptyPrompt }
        let setup = try steering.steering(for: loaded)
        let hooks = try setup.hooks(model: loaded.model.info)?.0
        let session = try loaded.model.makeSession(capacity: tokens.count)
        var logits: [Float] = []
        if stepwise {
            for (i, token) in tokens.enumerated() {
                let step = try session.forward([token], hooks: hooks, logits: .last)
                if allPositions || i == tokens.count - 1 { logits += step }
            }
        } else {
            logits = try session.forward(tokens, hooks: hooks, logits: allPositions ? .all : .last)
        }
        let vocab = loaded.model.info.vocabularySize
        if let npy {
            let shape = allPositions ? [tokens.count, vocab] : [vocab]
            try NPY.write(logits, shape: shape, to: npy)
        }
        let last = Array(logits[(logits.count - vocab)...])
        let best = last.withUnsafeBufferPointer { Vec.topIndices($0, k: min(top, vocab)) }
        if json {
            let entries: [[String: Any]] = try best.map {
                ["id": $0, "piece": try loaded.tokenizer.piece($0), "logit": Double(last[$0])]
            }
            var object: [String: Any] = ["tokens": tokens, "top": entries]
            if let mismatch = setup.mismatch { object["model_mismatch"] = mismatch }
            print(try jsonString(object))
        } else {
            print("tokens: \(tokens.count)")
            for id in best {
                let piece = try loaded.tokenizer.piece(id)
                print(String(format: "%6d  %10.4f  ", id, last[id]) + piece.debugDescription)
            }
            noteModelMismatch(setup.mismatch)
        }
    }
}
