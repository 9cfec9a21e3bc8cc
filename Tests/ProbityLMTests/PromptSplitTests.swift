// A prompt run as two calls split where `PromptSplit.point` allows, as one step: with the AVX-512
// panel kernel running the batched products, every position's activations at every hook point and
// the last position's logits have the bits of one call of the whole prompt, which is what lets an
// audit share a prompt's prefix among runs that edit only its rest and still write the report a
// run without sharing writes.

import Testing
import ProbityTensor
@testable import ProbityLM

@Suite(.serialized) struct PromptSplitTests {
    @Test func theSplitLeavesBothPartsBatchedAndInTheLastChunk() {
        let m = QuantizedMatrix.gemmMinBatch
        #expect(PromptSplit.point(length: 40, first: 20) == 20)
        #expect(PromptSplit.point(length: 40, first: 36) == 40 - m)   // the rest keeps m rows
        #expect(PromptSplit.point(length: 40, first: m - 1) == nil)   // the prefix would not
        #expect(PromptSplit.point(length: 2 * m - 1, first: 2 * m - 2) == nil)
        #expect(PromptSplit.point(length: 2 * m, first: 2 * m - 1) == m)
        #expect(PromptSplit.point(length: 40, first: 0) == nil)
        // Past one chunk (512 positions) the split falls in the whole call's last chunk.
        #expect(PromptSplit.point(length: 600, first: 590) == 600 - m)
        #expect(PromptSplit.point(length: 600, first: 520) == nil)
        #expect(PromptSplit.point(length: 600, first: 300) == nil)
    }

    /// Every hook point's rows by position, and the last logits, of `tokens` run as `split` says.
    static func run(_ model: any LanguageModel, _ tokens: [Int], split: Int?) throws
        -> (rows: [String: [UInt32]], logits: [UInt32], stepEnds: Set<Int>) {
        var rows: [String: [UInt32]] = [:]
        var stepEnds: Set<Int> = []
        let hooks = HookSet()
        for p in model.info.hookPoints {
            hooks.attach(at: p) { acts in
                stepEnds.insert(acts.stepEnd)
                for r in 0..<acts.count {
                    rows["\(acts.point.name)@\(acts.positions.lowerBound + r)"] = acts.row(r).map(\.bitPattern)
                }
            }
        }
        let session = try model.makeSession(capacity: tokens.count)
        let logits = try session.forward(tokens, hooks: hooks, split: split)
        return (rows, logits.map(\.bitPattern), stepEnds)
    }

    @Test func aSplitPromptHasTheBitsOfOneCall() throws {
        let loaded = try LoadedModel.load("default", threads: 2)
        let tokens = loaded.tokenizer.encode(
            "The committee met on Tuesday to discuss the budget for the new library, and after a long debate about the roof, "
                + "the opening hours and the number of reading rooms they agreed to ask the town for more money next spring",
            addSpecial: true, parseSpecial: false)
        let n = tokens.count
        #expect(n >= 2 * QuantizedMatrix.gemmMinBatch)
        let whole = try Self.run(loaded.model, tokens, split: nil)
        #expect(whole.rows.count == loaded.model.info.hookPoints.count * n)
        for first in [QuantizedMatrix.gemmMinBatch, n / 2, n - 1] {
            let at = try #require(PromptSplit.point(length: n, first: first))
            let split = try Self.run(loaded.model, tokens, split: at)
            #expect(split.stepEnds == [n], "split at \(at)")
            #expect(split.rows.keys == whole.rows.keys)
            if Dequantize.isaName == "avx512" {
                let differing = whole.rows.keys.filter { split.rows[$0] != whole.rows[$0] }.sorted()
                #expect(differing.isEmpty, "split at \(at): \(differing.count) rows differ, first \(differing.prefix(3))")
                #expect(split.logits == whole.logits, "split at \(at)")
            }
        }
    }
}
