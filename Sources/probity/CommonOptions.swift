// Option groups shared by the commands: each flag a user meets in several commands is declared
// once here (the model, threads, chat format, --json), and small output helpers.

import ArgumentParser
import Foundation
import ProbityLM
import ProbityTensor

/// The model a command reads: its optional first argument.
struct ModelArgument: ParsableArguments {
    @Argument(help: "The model: 'default' (fetched by scripts/setup), 'gemma3-270m' (scripts/setup --models) or a path to a GGUF file.")
    var model: String = "default"
}

/// `--threads`, for commands that run the model.
struct ThreadsOption: ParsableArguments {
    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?
}

/// `--lora FILE[:SCALE]`, for commands that run the model: LoRA adapters applied at load (docs/lora.md).
struct AdapterOptions: ParsableArguments {
    @Option(name: .customLong("lora"),
            help: ArgumentHelp("A LoRA adapter (llama.cpp GGUF) applied to the model, at SCALE (default 1); repeatable, the updates add up.",
                               valueName: "file[:scale]"))
    var lora: [String] = []

    /// The parsed requests, in the order given.
    func requests() throws -> [AdapterRequest] { try lora.map(AdapterRequest.parse) }
}

/// The model to run, the adapters applied to it and the threads to run it on.
struct ModelOptions: ParsableArguments {
    @OptionGroup var modelArgument: ModelArgument
    @OptionGroup var adapterOptions: AdapterOptions
    @OptionGroup var threadsOption: ThreadsOption

    var model: String { modelArgument.model }
    var threads: Int? { threadsOption.threads }

    /// Loads the model, its sessions' KV caches stored as `kvCache`, decode's products taking
    /// `activations`.
    func load(kvCache: KVCacheStorage = .f32, activations: ActivationPrecision = .f32) throws -> LoadedModel {
        try LoadedModel.load(model, threads: threads, adapters: try adapterOptions.requests(), kvCache: kvCache,
                             activations: activations)
    }
}

/// `--kv-cache`, for commands whose numbers it may change: how sessions' KV caches store keys and
/// values. Floats unless chosen, so no result depends on a hidden memory setting.
struct KVCacheOption: ParsableArguments {
    @Option(name: .customLong("kv-cache"),
            help: ArgumentHelp("KV cache storage: f32 (exact keys and values) or f16 (IEEE halves, half the memory; attention output changes slightly).",
                               valueName: "f32|f16"))
    var kvCache: String = "f32"

    /// The parsed choice.
    func storage() throws -> KVCacheStorage {
        guard let storage = KVCacheStorage(rawValue: kvCache) else {
            throw ValidationError("--kv-cache: expected f32 or f16, found '\(kvCache)'")
        }
        return storage
    }

    func validate() throws { _ = try storage() }
}

/// `--activations`, for commands that generate: the opt-in 8-bit activation mode (DESIGN.md,
/// "Numerics"). float32 unless chosen, and each command that takes it prints which was used.
struct ActivationsOption: ParsableArguments {
    @Option(name: .customLong("activations"),
            help: ArgumentHelp("Decode's matrix inputs: f32 (exact, within 2e-3 of float64) or q8 (quantized to 8 bits per block of 32 as llama.cpp does, for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q4_K weights; about 1e-2 from exact, faster where compute bounds decode).",
                               valueName: "f32|q8"))
    var activations: String = "f32"

    /// The parsed choice.
    func precision() throws -> ActivationPrecision {
        guard let precision = ActivationPrecision(rawValue: activations) else {
            throw ValidationError("--activations: expected f32 or q8, found '\(activations)'")
        }
        return precision
    }

    func validate() throws { _ = try precision() }
}

/// `--isa`: cap the kernels' instruction set level for the run, a stand-in for a CPU without the
/// higher levels (the products' rounding order differs between levels, so their bits do too).
struct KernelLevelOption: ParsableArguments {
    @Option(help: ArgumentHelp("Run the kernels at most at this instruction set level: avx512, avx2 or generic (a stand-in for a CPU without the higher ones; default: the best this CPU has).",
                               valueName: "avx512|avx2|generic"))
    var isa: String?

    /// `--isa` as a kernel level; nil when not given.
    func level() throws -> KernelLevel? {
        guard let isa else { return nil }
        guard let level = KernelLevel(rawValue: isa) else {
            throw ValidationError("--isa: expected avx512, avx2 or generic, found '\(isa)'")
        }
        return level
    }

    func validate() throws { _ = try level() }

    /// Caps the level; call before anything runs a kernel (the kernels cache it).
    func apply() throws {
        if let level = try level() { KernelLevel.limit(to: level) }
    }
}

/// `--chat-format`: a chat format to use instead of the one recognised from the model's template.
struct ChatFormatOption: ParsableArguments {
    @Option(name: .customLong("chat-format"),
            help: "Use this chat format instead of recognising the model's template (\(ChatFormat.knownNames)).")
    var chatFormat: String?
}

/// `--json`: JSON on standard output instead of text (each command's description says what it holds).
struct JSONOutput: ParsableArguments {
    @Flag(help: "Print JSON instead of text.")
    var json = false
}

/// Where a prompt comes from: raw text, or chat messages rendered with the model's template.
struct PromptOptions: ParsableArguments {
    @Option(help: "Raw prompt text (special tokens such as <|im_start|> are parsed).")
    var prompt: String?

    @Option(help: "A JSON file of chat messages: [{\"role\": \"user\", \"content\": \"...\"}].")
    var chat: String?

    @Option(help: "A user message, rendered with the model's chat template.")
    var user: String?

    @Option(help: "A system message to go with --user.")
    var system: String?

    @OptionGroup var chatFormatOption: ChatFormatOption
    var chatFormat: String? { chatFormatOption.chatFormat }

    func validate() throws {
        let sources = [prompt, chat, user].compactMap { $0 }.count
        if sources != 1 { throw ValidationError("give exactly one of --prompt, --chat or --user") }
        if system != nil && user == nil { throw ValidationError("--system goes with --user") }
    }

    /// The prompt's token ids.
    func tokens(for loaded: LoadedModel) throws -> [Int] {
        if let prompt { return loaded.tokenizer.encode(prompt, addSpecial: true, parseSpecial: true) }
        let messages: [ChatMessage]
        if let chat {
            messages = try ChatMessage.load(messagesFile: chat)
        } else {
            messages = (system.map { [ChatMessage(role: .system, content: $0)] } ?? [])
                + [ChatMessage(role: .user, content: user ?? "")]
        }
        let format = try ChatTemplate.format(for: loaded.file, override: chatFormat)
        return loaded.tokenizer.encode(try format.renderChat(messages, addGenerationPrompt: true), addSpecial: true)
    }
}

struct SamplingArguments: ParsableArguments {
    @Option(help: "Most tokens to generate.")
    var maxTokens: Int = 256

    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(help: "Keep only the K most likely tokens (0: off).")
    var topK: Int = 0

    @Option(help: "Nucleus sampling: keep the smallest set with this much probability (1: off).")
    var topP: Float = 1

    @Option(help: "Drop tokens less likely than this fraction of the most likely one (0: off).")
    var minP: Float = 0

    @Option(help: "Random seed: the same seed gives the same tokens.")
    var seed: UInt64 = 0

    @Option(help: "Stop when this text is generated (repeatable).")
    var stop: [String] = []

    @Flag(help: "Keep generating past the end-of-sequence token.")
    var ignoreEOS = false

    var options: GenerationOptions {
        GenerationOptions(
            maxTokens: maxTokens,
            sampling: SamplingOptions(temperature: temperature, topK: topK, topP: topP, minP: minP, seed: seed),
            stopStrings: stop, stopAtEOS: !ignoreEOS)
    }
}

/// Writes `text` to standard output immediately (for streaming).
func writeOut(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}

/// Encodes a JSON object with sorted keys (stable output that diffs cleanly).
func jsonString(_ object: Any) throws -> String {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    return String(decoding: data, as: UTF8.self)
}
