// The generation loop on the tiny synthetic model (TinyLlamaTests.swift): the stop predicate asked
// after every forward step, the logits kept per token, interruption between tokens, and the
// positions the model ran.

import Testing
import ProbityTensor
@testable import ProbityLM

@Suite struct TinyGeneratorTests {
    let model: LlamaModel
    let generator: Generator
    let prompt = [3, 17, 5, 30, 0, 9]

    init() throws {
        model = try LlamaModel(gguf: try TinyLlama(seed: 7).gguf(), pool: ThreadPool(threads: 1))
        // 32 tokens to match the model: "a"-"z", the byte-level space, three punctuation marks, "ab", EOS.
        var tokens = (UInt8(ascii: "a")...UInt8(ascii: "z")).map { String(UnicodeScalar($0)) }
        tokens += ["Ġ", "!", ".", ",", "ab", "<|end|>"]
        var types = [TokenType](repeating: .normal, count: tokens.count)
        types[31] = .control
        let tokenizer = try Tokenizer(vocabulary: Vocabulary(model: .bytePairEncoding, tokens: tokens, types: types,
                                                             merges: ["a b"], eosID: 31, preTokenizer: PreTokenizer(name: "gpt-2")))
        generator = Generator(model: model, tokenizer: tokenizer)
    }

    /// Greedy, never stopping at EOS, so runs last `maxTokens` unless told otherwise.
    func options(_ maxTokens: Int, keepLogits: Bool = false) -> GenerationOptions {
        GenerationOptions(maxTokens: maxTokens, stopAtEOS: false, keepLogits: keepLogits)
    }

    @Test func stopPredicateIsAskedAfterEveryForwardStep() throws {
        let hooks = HookSet()
        var rows: [Int] = []
        hooks.attach(at: .embed) { rows.append($0.count) }
        var asked: [Int] = []
        let r = try generator.generate(prompt: prompt, options: options(10), hooks: hooks,
                                       shouldStop: { asked.append(rows.count); return asked.count == 3 })
        #expect(r.finishReason == .halted)
        // Asked after the prompt's pass and after each of the two tokens fed back; the third says stop.
        #expect(asked == [1, 2, 3])
        #expect(rows == [prompt.count, 1, 1])
        #expect(r.tokens.count == 2)
        #expect(r.positions == prompt.count + 2)
    }

    @Test func stopAfterThePromptSamplesNothing() throws {
        let r = try generator.generate(prompt: prompt, options: options(10), shouldStop: { true })
        #expect(r.finishReason == .halted)
        #expect(r.tokens.isEmpty && r.text.isEmpty)
        #expect(r.positions == prompt.count)
    }

    @Test func lengthLeavesTheLastTokenUnrun() throws {
        let r = try generator.generate(prompt: prompt, options: options(5))
        #expect(r.finishReason == .length)
        #expect(r.tokens.count == 5)
        #expect(r.positions == prompt.count + 4)
        #expect(r.logits.isEmpty)
    }

    @Test func keptLogitsAreWhatEachTokenWasSampledFrom() throws {
        let plain = try generator.generate(prompt: prompt, options: options(6))
        let kept = try generator.generate(prompt: prompt, options: options(6, keepLogits: true))
        #expect(kept.tokens == plain.tokens && kept.text == plain.text)
        #expect(kept.logits.count == kept.tokens.count)
        // The same forward steps by hand give the same rows, bit for bit, and greedy took their argmax.
        let session = try model.makeSession(capacity: prompt.count + 6)
        var row = try session.forward(prompt, logits: .last)
        for (j, token) in kept.tokens.enumerated() {
            #expect(kept.logits[j] == row, "token \(j)")
            #expect(row.indices.max { row[$0] < row[$1] } == token, "token \(j)")
            if j + 1 < kept.tokens.count { row = try session.forward([token], origins: [.generated], hooks: nil, logits: .last) }
        }
    }

    @Test func interruptionEndsBetweenTokens() throws {
        var polls = 0
        var order: [String] = []
        let r = try generator.generate(prompt: prompt, options: options(10),
                                       shouldStop: { order.append("stop"); return false },
                                       interrupted: { order.append("interrupted"); polls += 1; return polls == 3 })
        #expect(r.finishReason == .interrupted)
        #expect(r.tokens.count == 2)
        #expect(r.positions == prompt.count + 2)
        // The stop predicate follows each forward step; the interruption check precedes each sample.
        #expect(order == ["stop", "interrupted", "stop", "interrupted", "stop", "interrupted"])
        let whole = try generator.generate(prompt: prompt, options: options(10))
        #expect(Array(whole.tokens.prefix(2)) == r.tokens)
    }

    @Test func stopStringEndsGenerationAndIsCut() throws {
        // Whatever greedy picks first, making it the stop string ends there with its text cut.
        let first = try generator.generate(prompt: prompt, options: options(1))
        let piece = try #require(first.text.isEmpty ? nil : first.text)
        let r = try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 10, stopStrings: [piece],
                                                                                 stopAtEOS: false))
        #expect(r.finishReason == .stop)
        #expect(r.tokens == first.tokens && r.text.isEmpty)
    }
}
