// Batched decode on every architecture the repository runs: the tiny random-weight models of the
// Llama-style families (qwen2, qwen3, llama as Llama 3 and as Mistral, phi3), the default model with
// a LoRA adapter, and Gemma 3 (whose steps run one sequence after another): each sequence's logits
// bit-identical to its own unbatched decode while others join and leave.

import Foundation
import Testing
import ProbityFormats
import ProbityTensor
import ProbityTestSupport
@testable import ProbityLM

@Suite(.serialized) struct BatchedFamilyTests {
    static func schedule(vocab: Int, seed: UInt64) -> [BatchedSequence] {
        let p = BatchedRun.prompts(4, vocab: vocab, seed: seed)
        return [BatchedSequence(prompt: p[0], joins: 0, steps: 5), BatchedSequence(prompt: p[1], joins: 0, steps: 2),
                BatchedSequence(prompt: p[2], joins: 1, steps: 4), BatchedSequence(prompt: p[3], joins: 2, steps: 3)]
    }

    @Test(arguments: FamilyReference.families)
    func tinyFamily(_ family: String) throws {
        let model = try FamilyReference.model(family)
        #expect(BatchDecoder(model: model).fusesBatches, "\(family)")
        let widest = try BatchedRun.expectIdentical(model, Self.schedule(vocab: model.info.vocabularySize, seed: 7),
                                                    family)
        #expect(widest >= 3)
    }

    @Test func defaultModelWithLoRA() throws {
        let base = try GGUFFile(path: try TestData.defaultModelPath())
        let adapter = try LoRAAdapterFile(path: LoRAReferenceTests.directory.appendingPathComponent("smollm2-rank8.gguf").path)
        let model = try LlamaModel(gguf: base, pool: ThreadPool(threads: 2),
                                   adapters: try LoRAUpdates(adapters: [(adapter, 1.5)], base: base))
        #expect(BatchDecoder(model: model).fusesBatches)
        try BatchedRun.expectIdentical(model, Self.schedule(vocab: model.info.vocabularySize, seed: 8), "lora")
        // The adapter is in effect: the first step differs from the base model's.
        let plain = try Reference.defaultModel()
        let seq = [BatchedSequence(prompt: [600, 700, 800], steps: 1)]
        let (a, b) = (try BatchedRun.batched(model, seq).0, try BatchedRun.batched(plain, seq).0)
        #expect(BatchedRun.bits(a[0][0]) != BatchedRun.bits(b[0][0]))
    }

    @Test func gemma3RunsSequentiallyWithTheSameResults() throws {
        let model = try Gemma3Model(gguf: GGUFFile(path: try TestData.gemma3ModelPath()), pool: ThreadPool(threads: 2))
        #expect(!BatchDecoder(model: model).fusesBatches)
        try BatchedRun.expectIdentical(model, Self.schedule(vocab: model.info.vocabularySize, seed: 9), "gemma3")
    }
}
