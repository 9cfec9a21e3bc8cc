// `probity sae train`: train a TopK SAE at one hook point on activations streamed from corpora,
// with checkpoints and --resume; writes a feature pack in SAELens's layout.

import ArgumentParser
import Foundation
import ProbityFormats
import ProbityLM
import ProbityTraining

struct SAETrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a TopK sparse autoencoder on activations at one hook point.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Hook point, e.g. blocks.15.hook_resid_post.")
    var hook: String

    @Option(parsing: .upToNextOption, help: "Corpus files: ShareGPT or chitchat JSON, .txt, .jsonl ({\"text\": ...}).")
    var corpus: [String] = []

    @Option(help: "Latents (d_sae).")
    var latents: Int = 8192

    @Option(help: "Active latents per position (TopK k).")
    var k: Int = 32

    @Option(help: "Training tokens (positions).")
    var tokens: Int

    @Option(help: "Output pack directory.")
    var out: String

    @Flag(help: "Continue from the checkpoint, if there is one.")
    var resume = false

    @Option(help: "Positions per optimiser step.")
    var batchSize: Int = 4096

    @Option(help: "Tokens per context window.")
    var context: Int = 256

    @Option(help: "Positions per shuffling buffer.")
    var bufferTokens: Int = 65536

    @Option(help: "Adam learning rate.")
    var lr: Float = 2e-4

    @Option(help: "How the pack stores its weights: f32, f16 or bf16 (training runs in f32).")
    var dtype: String = "f32"

    @Option(help: "Random seed (initialisation and shuffling).")
    var seed: UInt64 = 0

    @Option(help: "Checkpoint directory (default: OUT/checkpoint).")
    var checkpoint: String?

    @Option(help: "Checkpoint every N buffers.")
    var checkpointEvery: Int = 1

    @Option(help: "A latent is dead after this many tokens without firing (default: min(10M, tokens/4)).")
    var deadAfter: Int = 0

    @OptionGroup var chatFormatOption: ChatFormatOption
    var chatFormat: String? { chatFormatOption.chatFormat }

    @Option(help: ArgumentHelp("Stop with a checkpoint after N buffers (for testing resumption).", visibility: .hidden))
    var stopAfterBuffers: Int = 0

    func run() throws {
        guard let point = HookPoint(name: hook) else { throw HookNameError.notAHookName(hook) }
        var request = SAETrainingRequest(point: point, corpora: corpus, latents: latents, k: k, tokens: tokens, out: out)
        request.resume = resume
        request.batchSize = batchSize
        request.context = context
        request.bufferRows = bufferTokens
        request.learningRate = lr
        request.seed = seed
        request.checkpoint = checkpoint
        request.checkpointEvery = checkpointEvery
        request.deadAfter = deadAfter
        request.chatFormat = chatFormat
        guard let stored = ["f32": SafeTensorDType.f32, "f16": .f16, "bf16": .bf16][dtype.lowercased()] else {
            throw ValidationError("--dtype: expected f32, f16 or bf16, found '\(dtype)'")
        }
        request.dtype = stored
        request.stopAfterBuffers = stopAfterBuffers
        try request.validate()
        for path in corpus { _ = try Corpus(path: path) }
        let loaded = try modelOptions.load()
        let metrics = try SAETrainingRun.run(request, loaded: loaded) { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        if metrics["stopped_at_step"] != nil {
            print("stopped with a checkpoint in \(request.checkpointDirectory)")
        } else {
            print("wrote \(out)")
        }
    }
}
