// Shared prefixes and batched generation on the default model: a session forked after its prompt
// continues with the bits of a session that ran the prompt itself (one token at a time or a chunk
// of generated tokens), forks are independent of their parent and of each other, and
// `BatchGenerator` gives every sequence the tokens, text and finish reason `Generator` gives it
// alone, with sequences of different lengths, stop strings and stop predicates leaving mid-batch.

import Foundation
import Testing
import ProbityTensor
@testable import ProbityLM

@Suite(.serialized) struct ForkAndBatchGenerationTests {
    let model: LlamaModel
    let tokenizer: Tokenizer

    init() throws {
        let loaded = try LoadedModel.load("default", threads: 2)
        guard let llama = loaded.model as? LlamaModel else {
            throw ModelError.unsupportedArchitecture(loaded.model.info.architecture, supported: ["llama"])
        }
        model = llama
        tokenizer = loaded.tokenizer
    }

    var prompt: [Int] {
        tokenizer.encode("The three primary colours of light are red, green and blue. Mixing all of them gives",
                         addSpecial: true, parseSpecial: false)
    }

    @Test func aForkContinuesWithTheBitsOfItsOwnPrompt() throws {
        let p = prompt
        #expect(p.count >= QuantizedMatrix.gemmMinBatch, "the prompt runs the batched products")
        let continuation = [284, 1012, 3452, 28, 2215, 30, 1047, 9876, 13, 401, 77, 5120, 218, 92, 3, 1500, 8080, 41]
        // Alone: the prompt, then the continuation as one chunk, then one more token.
        let alone = try model.makeSession(capacity: p.count + continuation.count + 1)
        let first = try alone.forward(p, origins: nil, hooks: nil, logits: .last)
        let chunk = try alone.forward(continuation, origins: nil, hooks: nil, logits: .all)
        let step = try alone.forward([5], origins: nil, hooks: nil, logits: .last)

        let parent = try model.makeSession(capacity: p.count)
        let parentFirst = try parent.forward(p, origins: nil, hooks: nil, logits: .last)
        #expect(BatchedRun.bits(parentFirst) == BatchedRun.bits(first))
        let a = try parent.fork(capacity: p.count + continuation.count + 1)
        let b = try parent.fork(capacity: p.count + 1)
        #expect(a.length == p.count && a.tokens == p && a.capacity == p.count + continuation.count + 1)
        #expect(BatchedRun.bits(try a.forward(continuation, origins: nil, hooks: nil, logits: .all)) == BatchedRun.bits(chunk))
        #expect(BatchedRun.bits(try a.forward([5], origins: nil, hooks: nil, logits: .last)) == BatchedRun.bits(step))
        // The sibling and the parent are untouched by a's positions.
        let alone2 = try model.makeSession(capacity: p.count + 1)
        _ = try alone2.forward(p, origins: nil, hooks: nil, logits: .none)
        let want = try alone2.forward([17], origins: nil, hooks: nil, logits: .last)
        #expect(BatchedRun.bits(try b.forward([17], origins: nil, hooks: nil, logits: .last)) == BatchedRun.bits(want))
        #expect(parent.length == p.count)
        #expect(throws: ModelError.contextOverflow(needed: p.count, capacity: 3)) { try parent.fork(capacity: 3) }
    }

    /// Sequences of one batch: different prompts, lengths, sampling, stop strings and predicates.
    func jobs() -> [(prompt: [Int], options: GenerationOptions, stopAfter: Int?)] {
        let texts = ["Once upon a time", "def fibonacci(n):", "The capital of France is", "1, 2, 3, 4,",
                     "Dear Sir or Madam,"]
        return texts.enumerated().map { i, t in
            var o = GenerationOptions(maxTokens: [24, 7, 16, 30, 12][i])
            if i == 1 { o.sampling = SamplingOptions(temperature: 0.8, topP: 0.9, seed: 7) }
            if i == 3 { o.stopStrings = [" 9,"] }
            return (tokenizer.encode(t, addSpecial: true, parseSpecial: false), o, i == 4 ? 5 : nil)
        }
    }

    @Test func batchedGenerationsMatchLoneGenerations() throws {
        let jobs = jobs()
        let alone = try jobs.map { j -> GenerationResult in
            var steps = 0
            return try Generator(model: model, tokenizer: tokenizer).generate(
                prompt: j.prompt, options: j.options, hooks: nil,
                shouldStop: { steps += 1; return j.stopAfter.map { steps > $0 } ?? false })
        }
        let generator = BatchGenerator(model: model)
        var ids: [Int] = []
        for (i, j) in jobs.enumerated() {
            // The last two join after three steps of the others.
            if i == 3 { for _ in 0..<3 { try generator.step() } }
            let session = try model.makeSession(capacity: j.prompt.count + j.options.maxTokens)
            let logits = try session.forward(j.prompt, origins: nil, hooks: nil, logits: .last)
            var steps = 1
            let stream = try GenerationStream(prompt: j.prompt, options: j.options, tokenizer: tokenizer, halted: false)
            ids.append(generator.add(session: session, logits: logits, stream: stream, hooks: nil,
                                     shouldStop: { steps += 1; return j.stopAfter.map { steps > $0 } ?? false }))
        }
        try generator.runAll()
        #expect(generator.activeCount == 0)
        for (i, id) in ids.enumerated() {
            let got = try #require(generator.result(id))
            #expect(got.tokens == alone[i].tokens, "sequence \(i)")
            #expect(got.text == alone[i].text, "sequence \(i)")
            #expect(got.finishReason == alone[i].finishReason, "sequence \(i)")
            #expect(got.positions == alone[i].positions, "sequence \(i)")
            #expect(generator.result(id) == nil, "a result is handed over once")
        }
        #expect(Set(alone.map(\.finishReason)).isSuperset(of: [.length, .stop, .halted]),
                "the batch covers sequences ending by length, stop string and predicate: \(alone.map(\.finishReason))")
    }

    @Test func anInterruptionEndsEverySequence() throws {
        let generator = BatchGenerator(model: model)
        var ids: [Int] = []
        for j in jobs().prefix(3) {
            let session = try model.makeSession(capacity: j.prompt.count + j.options.maxTokens)
            let logits = try session.forward(j.prompt, origins: nil, hooks: nil, logits: .last)
            ids.append(generator.add(session: session, logits: logits,
                                     stream: try GenerationStream(prompt: j.prompt, options: j.options, tokenizer: tokenizer, halted: false),
                                     hooks: nil))
        }
        try generator.step()
        let ended = try generator.step(interrupted: { true })
        #expect(Set(ended) == Set(ids))
        for id in ids {
            let r = try #require(generator.result(id))
            #expect(r.finishReason == .interrupted && r.tokens.count == 1)
        }
    }
}
