// Golden facts about the default model (Tests/Fixtures/reference/README.md), read through GGUFFile.

import Foundation
import Testing
import ProbityFormats
import ProbityTensor
import ProbityTestSupport

@Suite struct GGUFDefaultModelTests {
    @Test func hyperparameters() throws {
        let f = try GGUFFile(path: TestData.defaultModelPath())
        #expect(f.version == 3)
        #expect(f.alignment == 32)
        #expect(f.metadataKeys.count == 33)
        #expect(try f.architecture() == "llama")
        #expect(try f.requiredInt(GGUFKey.blockCount(arch: "llama")) == 30)
        #expect(try f.requiredInt(GGUFKey.embeddingLength(arch: "llama")) == 576)
        #expect(try f.requiredInt(GGUFKey.feedForwardLength(arch: "llama")) == 1536)
        #expect(try f.requiredInt(GGUFKey.headCount(arch: "llama")) == 9)
        #expect(try f.requiredInt(GGUFKey.headCountKV(arch: "llama")) == 3)
        #expect(try f.requiredDouble(GGUFKey.ropeFreqBase(arch: "llama")) == 100000)
        #expect(abs(try f.requiredDouble(GGUFKey.rmsEpsilon(arch: "llama")) - 1e-5) < 1e-9)
        #expect(try f.requiredStringArray(GGUFKey.tokens).count == 49152)
        #expect(f.value(GGUFKey.bosTokenID)?.intValue == 1)
        #expect(f.value(GGUFKey.eosTokenID)?.intValue == 2)
        #expect(f.value(GGUFKey.addBOS) == .bool(false))
        #expect(f.value(GGUFKey.tokenizerPre) == .string("smollm"))
        #expect(f.value(GGUFKey.chatTemplate)?.stringValue?.contains("<|im_start|>") == true)
    }

    @Test func tensors() throws {
        let f = try GGUFFile(path: TestData.defaultModelPath())
        #expect(f.tensors.count == 272)
        let embd = try #require(f.tensor(named: GGUFTensorName.tokenEmbedding))
        #expect(embd.type == .q8_0)
        #expect(embd.shape == [576, 49152])
        #expect(embd.byteCount == 576 * 49152 / 32 * 34)
        #expect(f.tensor(named: GGUFTensorName.output) == nil)  // tied head
        for block in 0..<30 {
            let q = try #require(f.tensor(named: GGUFTensorName.attnQ(block: block)))
            #expect(q.type == .q4_1 && q.shape == [576, 576])
            let k = try #require(f.tensor(named: GGUFTensorName.attnK(block: block)))
            #expect(k.type == .q4_1 && k.shape == [576, 192])
            let down = try #require(f.tensor(named: GGUFTensorName.ffnDown(block: block)))
            #expect(down.type == .q4_1 && down.shape == [1536, 576])
            let norm = try #require(f.tensor(named: GGUFTensorName.attnNorm(block: block)))
            #expect(norm.type == .f32 && norm.shape == [576])
        }
        let outNorm = try #require(f.tensor(named: GGUFTensorName.outputNorm))
        // RMSNorm weights of this model lie in [-2.125, 3.34375] (read independently with numpy):
        // a check that the data view points at the right bytes.
        let weights = f.data(for: outNorm).withMemoryRebound(to: Float.self) { Array($0) }
        #expect(weights.count == 576)
        #expect(weights.min() == -2.125 && weights.max() == 3.34375)
        // The last tensor's data ends within alignment padding of the end of the file.
        let end = f.tensors.map { f.dataOffset + $0.offset + $0.byteCount }.max() ?? 0
        #expect(end <= f.fileSize && f.fileSize - end < f.alignment)
    }
}
