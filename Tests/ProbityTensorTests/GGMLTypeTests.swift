import Testing
@testable import ProbityTensor

@Suite struct GGMLTypeTests {
    @Test func blockSizesMatchGGML() {
        #expect(GGMLType.q4_1.blockSize == 32 && GGMLType.q4_1.bytesPerBlock == 20)
        #expect(GGMLType.q8_0.bytesPerBlock == 34)
        #expect(GGMLType.q6_K.blockSize == 256 && GGMLType.q6_K.bytesPerBlock == 210)
        #expect(GGMLType(rawValue: 4) == nil)  // Q4_2 was removed from ggml
    }

    @Test func byteCountRejectsPartialBlocks() {
        #expect(GGMLType.q4_0.byteCount(elements: 64) == 36)
        #expect(GGMLType.q4_0.byteCount(elements: 33) == nil)
        #expect(GGMLType.f32.byteCount(elements: Int.max / 2) == nil)
    }
}
