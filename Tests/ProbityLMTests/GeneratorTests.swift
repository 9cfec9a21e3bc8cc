// Generation over the default model: greedy output, max_tokens, EOS, stop strings, a caller's
// stop predicate and kept logits, with hooks seeing the prompt once and then one position per step.

import Testing
@testable import ProbityLM

@Suite(.serialized) struct GeneratorTests {
    let loaded: LoadedModel
    let prompt: [Int]

    init() throws {
        loaded = try LoadedModel.load("default", threads: 2)
        prompt = loaded.tokenizer.encode("The capital of France is Paris. The capital of Germany is",
                                         addSpecial: true, parseSpecial: true)
    }

    @Test func greedyContinuesLikeLlamaCpp() throws {
        let g = Generator(model: loaded.model, tokenizer: loaded.tokenizer)
        var streamed = ""
        let r = try g.generate(prompt: prompt, options: GenerationOptions(maxTokens: 5)) { streamed += $0 }
        // llama.cpp's greedy tokens for this prompt (Tests/Fixtures/reference, plain/default).
        #expect(r.tokens == [11452, 30, 378, 3575, 282])
        #expect(r.text == " Berlin. The capital of")
        #expect(streamed == r.text)
        #expect(r.finishReason == .length)
    }

    @Test func callerCanHaltGeneration() throws {
        let g = Generator(model: loaded.model, tokenizer: loaded.tokenizer)
        let hooks = HookSet()
        var steps: [Int] = []
        hooks.attach(at: .residPost(0)) { steps.append($0.count) }
        var asked = 0
        let r = try g.generate(prompt: prompt, options: GenerationOptions(maxTokens: 20), hooks: hooks,
                               shouldStop: { asked += 1; return asked > 3 })
        #expect(r.finishReason == .halted)
        #expect(r.tokens.count == 3)
        // The prompt, then one step per generated token (each is fed back before the predicate is asked).
        #expect(steps == [prompt.count, 1, 1, 1])
    }

    @Test func keepingLogitsLeavesTheOutputAlone() throws {
        let g = Generator(model: loaded.model, tokenizer: loaded.tokenizer)
        let plain = try g.generate(prompt: prompt, options: GenerationOptions(maxTokens: 8))
        let kept = try g.generate(prompt: prompt, options: GenerationOptions(maxTokens: 8, keepLogits: true))
        #expect(kept.tokens == plain.tokens && kept.text == plain.text && kept.finishReason == plain.finishReason)
        #expect(plain.logits.isEmpty && kept.logits.count == kept.tokens.count)
        // The first row is the prompt's last position, as a lone forward pass computes it.
        let session = try loaded.model.makeSession(capacity: prompt.count)
        #expect(kept.logits.first == (try session.forward(prompt, hooks: nil, logits: .last)))
    }

    @Test func endOfSequenceEndsGeneration() throws {
        let chat = try ChatFormat.chatmlSmolLM.render([.user("Say only: yes")], addGenerationPrompt: true)
        let tokens = loaded.tokenizer.encode(chat, addSpecial: true, parseSpecial: true)
        let g = Generator(model: loaded.model, tokenizer: loaded.tokenizer)
        let r = try g.generate(prompt: tokens, options: GenerationOptions(maxTokens: 64))
        #expect(r.finishReason == .eos)
        #expect(!r.tokens.contains(2))
    }
}
