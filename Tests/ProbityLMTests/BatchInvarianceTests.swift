// A sequence's logits do not depend on what it is batched with: alone, with two companions, with
// sixteen (four full register tiles of the product kernel and one more), at one thread or three,
// the same bits at every step, and the bits of the unbatched decode.

import Foundation
import Testing
import ProbityTensor
@testable import ProbityLM
import ProbityTestSupport

@Suite(.serialized) struct BatchInvarianceTests {
    /// The target sequence's logits over `steps` steps, decoded in batches with `companions` others.
    static func target(_ model: LlamaModel, companions: Int, steps: Int) throws -> [[Float]] {
        let vocab = model.info.vocabularySize
        let prompts = BatchedRun.prompts(companions + 1, vocab: vocab, seed: 11)
        let seqs = [BatchedSequence(prompt: [1200, 3400, 560, 78, 9100], steps: steps)]
            + prompts.dropFirst().map { BatchedSequence(prompt: $0, steps: steps) }
        return try BatchedRun.batched(model, seqs).0[0]
    }

    @Test func batchCompositionAndThreadsChangeNoBits() throws {
        let steps = 4
        let two = try Reference.defaultModel(threads: 2), one = try Reference.defaultModel(threads: 1),
            three = try Reference.defaultModel(threads: 3)
        let reference = try BatchedRun.unbatched(two, [BatchedSequence(prompt: [1200, 3400, 560, 78, 9100], steps: steps)]).0[0]
        let runs: [(String, [[Float]])] = [
            ("alone", try Self.target(two, companions: 0, steps: steps)),
            ("with 2", try Self.target(two, companions: 2, steps: steps)),
            ("with 16", try Self.target(two, companions: 16, steps: steps)),
            ("with 5, one thread", try Self.target(one, companions: 5, steps: steps)),
            ("with 7, three threads", try Self.target(three, companions: 7, steps: steps)),
        ]
        for (label, logits) in runs {
            #expect(logits.count == steps, "\(label)")
            for (t, (g, w)) in zip(logits, reference).enumerated() {
                #expect(BatchedRun.bits(g) == BatchedRun.bits(w), "\(label): step \(t)")
            }
        }
    }
}
