// `probity generate`: stream a generation from a raw prompt or chat messages. Ctrl-C stops it
// between tokens: what was generated is printed and the exit code is 130.

import ArgumentParser
import Foundation
import ProbityLM

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text, streaming it to standard output.",
        discussion: """
            --json prints one object with the text, tokens, finish reason and timings instead of streaming. \
            Ctrl-C stops generation between tokens; what was generated is printed (finish reason \
            "interrupted") and the exit code is 130.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var promptOptions: PromptOptions
    @OptionGroup var sampling: SamplingArguments
    @OptionGroup var controlVectorOptions: ControlVectorOptions
    @OptionGroup var kvCacheOption: KVCacheOption
    @OptionGroup var activationsOption: ActivationsOption

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    func run() throws {
        // Caught from the start, so that a Ctrl-C while the model loads still ends with code 130.
        try catchingInterrupts { flag in try run(interrupted: flag) }
    }

    private func run(interrupted flag: InterruptFlag) throws {
        let activations = try activationsOption.precision()
        let loaded = try modelOptions.load(kvCache: try kvCacheOption.storage(), activations: activations)
        // Never silent: an 8-bit run says so where a reader of its output sees it.
        if activations == .q8 && !json {
            FileHandle.standardError.write(Data("activations: q8 (decode's products on 8-bit inputs)\n".utf8))
        }
        let prompt = try promptOptions.tokens(for: loaded)
        let generator = Generator(model: loaded.model, tokenizer: loaded.tokenizer)
        let steering = try attachedHooks(try controlVectorOptions.interventions(for: loaded.model.info), model: loaded.model.info)
        let result = try generator.generate(prompt: prompt, options: sampling.options, hooks: steering?.0,
                                            onText: { text in if !json { writeOut(text) } },
                                            interrupted: { flag.isSet })
        if json {
            let object: [String: Any] = [
                "text": result.text,
                "tokens": result.tokens,
                "prompt_tokens": result.promptTokens.count,
                "finish_reason": result.finishReason.rawValue,
                "prefill_seconds": result.prefillSeconds,
                "decode_seconds": result.decodeSeconds,
                "activations": activations.rawValue,
            ]
            print(try jsonString(object))
        } else {
            writeOut("\n")
        }
        if result.finishReason == .interrupted { throw interruptedExit() }
    }
}
