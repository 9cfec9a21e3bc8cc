// Dequantization: hand-built blocks with values worked out by hand, exhaustive half and bfloat16
// conversion, and every instruction set level bit-identical to the element-by-element reference.
import Testing
@testable import ProbityTensor

@Suite struct DequantizeTests {
    func run(_ type: GGMLType, _ bytes: [UInt8], isa: Int32? = nil) throws -> [Float] {
        let count = bytes.count / type.bytesPerBlock * type.blockSize
        var out = [Float](repeating: .nan, count: count)
        try bytes.withUnsafeBytes { src in
            try out.withUnsafeMutableBufferPointer { dst in
                if let isa {
                    try Dequantize.run(type, from: src.baseAddress!, count: count, into: dst.baseAddress!, isa: isa)
                } else {
                    try Dequantize.run(type, from: src.baseAddress!, count: count, into: dst.baseAddress!)
                }
            }
        }
        return out
    }

    /// Nibble bytes whose low nibble is j and high nibble 15 - j.
    let ramp: [UInt8] = (0..<16).map { UInt8($0 | (15 - $0) << 4) }

    @Test func q4_0ByHand() throws {
        // d = 0.25 (f16 0x3400): element j = (j - 8) / 4, element j + 16 = (7 - j) / 4.
        let block: [UInt8] = [0x00, 0x34] + ramp
        let low: [Float] = (0..<16).map { (j: Int) -> Float in Float(j - 8) * 0.25 }
        let high: [Float] = (0..<16).map { (j: Int) -> Float in Float(7 - j) * 0.25 }
        let expected = low + high
        for isa in Dequantize.isaLevels { #expect(try run(.q4_0, block, isa: isa) == expected) }
    }

    @Test func q4_1ByHand() throws {
        // d = 0.5 (0x3800), m = -1 (0xBC00): element j = j/2 - 1, element j + 16 = (15 - j)/2 - 1.
        let block: [UInt8] = [0x00, 0x38, 0x00, 0xBC] + ramp
        let low: [Float] = (0..<16).map { (j: Int) -> Float in Float(j) * 0.5 - 1 }
        let high: [Float] = (0..<16).map { (j: Int) -> Float in Float(15 - j) * 0.5 - 1 }
        let expected = low + high
        #expect(expected.prefix(4) == [-1, -0.5, 0, 0.5])
        for isa in Dequantize.isaLevels { #expect(try run(.q4_1, block, isa: isa) == expected) }
    }

    @Test func q5_0ByHand() throws {
        // d = 1 (0x3C00), qh = 0x0000FFFF sets the fifth bit of elements 0..15 only; both nibbles
        // of byte j are j. So element j = (16 + j) - 16 = j and element j + 16 = j - 16.
        let block: [UInt8] = [0x00, 0x3C, 0xFF, 0xFF, 0x00, 0x00] + (0..<16).map { UInt8($0 | $0 << 4) }
        let low: [Float] = (0..<16).map { (j: Int) -> Float in Float(j) }
        let high: [Float] = (0..<16).map { (j: Int) -> Float in Float(j - 16) }
        let expected = low + high
        for isa in Dequantize.isaLevels { #expect(try run(.q5_0, block, isa: isa) == expected) }
    }

    @Test func q5_1ByHand() throws {
        // d = 0.5, m = 2 (0x4000), qh = 0xFFFF0000 sets the fifth bit of elements 16..31:
        // element j = j/2 + 2, element j + 16 = (16 + j)/2 + 2.
        let block: [UInt8] = [0x00, 0x38, 0x00, 0x40, 0x00, 0x00, 0xFF, 0xFF] + (0..<16).map { UInt8($0 | $0 << 4) }
        let low: [Float] = (0..<16).map { (j: Int) -> Float in Float(j) * 0.5 + 2 }
        let high: [Float] = (0..<16).map { (j: Int) -> Float in Float(16 + j) * 0.5 + 2 }
        let expected = low + high
        for isa in Dequantize.isaLevels { #expect(try run(.q5_1, block, isa: isa) == expected) }
    }

    @Test func q5_0SingleHighBits() throws {
        // One fifth bit at a time, so a bit landing on the wrong element shows.
        for bit in 0..<32 {
            let qh = UInt32(1) << UInt32(bit)
            let block: [UInt8] = [0x00, 0x3C] + (0..<4).map { UInt8((qh >> (8 * UInt32($0))) & 0xff) }
                + [UInt8](repeating: 0, count: 16)
            let expected = (0..<32).map { Float($0 == bit ? 0 : -16) }
            for isa in Dequantize.isaLevels { #expect(try run(.q5_0, block, isa: isa) == expected, "bit \(bit)") }
        }
    }

    @Test func q8_0ByHand() throws {
        // d = 0.125 (0x3000), q_j = 8j - 128: element j = j - 16.
        let block: [UInt8] = [0x00, 0x30] + (0..<32).map { UInt8(bitPattern: Int8($0 * 8 - 128)) }
        let expected = (0..<32).map { Float($0 - 16) }
        for isa in Dequantize.isaLevels { #expect(try run(.q8_0, block, isa: isa) == expected) }
    }

    @Test func q4_KByHand() throws {
        // d = 1, dmin = 0.5; every nibble byte 0x21 (low 1, high 2). Scales and mins of the 8
        // sub-blocks, unpacked by hand: sc = 1, 2, 3, 4, 5, 6, 7, 8 and m = 1, 0, 0, 0, 17, 2, 3, 4.
        // Sub-block s uses low nibbles when s is even, high when odd: w = sc·q - 0.5·m.
        let scales: [UInt8] = [1, 2, 3, 4, 0x41, 0, 0, 0, 0x15, 0x26, 0x37, 0x48]
        let block: [UInt8] = [0x00, 0x3C, 0x00, 0x38] + scales + [UInt8](repeating: 0x21, count: 128)
        let perSubBlock: [Float] = [0.5, 4, 3, 8, -3.5, 11, 5.5, 14]
        let expected = perSubBlock.flatMap { [Float](repeating: $0, count: 32) }
        for isa in Dequantize.isaLevels { #expect(try run(.q4_K, block, isa: isa) == expected) }
    }

    @Test func q5_KByHand() throws {
        // d = 1, dmin = 1; sc = 1 for all sub-blocks, m = 1, 2, 3, 4 for sub-blocks 0..3 and 0 after.
        // Nibbles 0x53 (low 3, high 5); fifth bits 0xAA set bits 1, 3, 5, 7: the odd sub-blocks.
        let scales: [UInt8] = [1, 1, 1, 1, 1, 2, 3, 4, 1, 1, 1, 1]
        let block: [UInt8] = [0x00, 0x3C, 0x00, 0x3C] + scales + [UInt8](repeating: 0xAA, count: 32)
            + [UInt8](repeating: 0x53, count: 128)
        let perSubBlock: [Float] = [2, 19, 0, 17, 3, 21, 3, 21]
        let expected = perSubBlock.flatMap { [Float](repeating: $0, count: 32) }
        for isa in Dequantize.isaLevels { #expect(try run(.q5_K, block, isa: isa) == expected) }
    }

    @Test func q6_KByHand() throws {
        // d = 0.5; scale of 16-element group g is g + 1; low nibbles 1 (quadrants 0, 1) and 2
        // (quadrants 2, 3); high pairs 0xE4 give quadrant k the high bits k: q - 32 = -31, -15, 2, 18.
        let block: [UInt8] = [UInt8](repeating: 0x21, count: 128) + [UInt8](repeating: 0xE4, count: 64)
            + (1...16).map { UInt8($0) } + [0x00, 0x38]
        let perQuadrant: [Float] = [-31, -15, 2, 18]
        var expected: [Float] = []
        for g in 0..<16 {
            let q = perQuadrant[(g % 8) / 2]
            expected += [Float](repeating: 0.5 * Float(g + 1) * q, count: 16)
        }
        for isa in Dequantize.isaLevels { #expect(try run(.q6_K, block, isa: isa) == expected) }
    }

    @Test func q2_KByHand() throws {
        // d = 1, dmin = 0.5; group g (of 16) has scale g % 8 + 1 and min g / 8; every code byte 0xE4
        // holds 0, 1, 2, 3 in its bit pairs, so elements 32j..32j+31 of each half have q = j.
        let scales: [UInt8] = (0..<16).map { (g: Int) -> UInt8 in UInt8(g % 8 + 1 + (g / 8) * 16) }
        let block: [UInt8] = scales + [UInt8](repeating: 0xE4, count: 64) + [0x00, 0x3C, 0x00, 0x38]
        var expected: [Float] = []
        for g in 0..<16 {
            let q = (g % 8) / 2  // group g lies in quarter j = (g mod 8) / 2 of its half
            expected += [Float](repeating: Float((g % 8 + 1) * q) - 0.5 * Float(g / 8), count: 16)
        }
        #expect(expected[0] == 0 && expected[32] == 3 && expected[128] == -0.5 && expected[255] == 23.5)
        for isa in Dequantize.isaLevels { #expect(try run(.q2_K, block, isa: isa) == expected) }
    }

    @Test func q3_KByHand() throws {
        // d = 0.5 and all sixteen scales 34 (low nibbles 2 in bytes 0..7, high pairs 2 in 8..11):
        // dl = 0.5 · (34 − 32) = 1. Code bytes 0xE4 give low bits q = j in quarter j; hmask bytes
        // 0x0F (l < 16) set the third bit in the first half only, 0xF0 (l ≥ 16) in the second only;
        // a clear third bit subtracts 4.
        let block: [UInt8] = [UInt8](repeating: 0x0F, count: 16) + [UInt8](repeating: 0xF0, count: 16)
            + [UInt8](repeating: 0xE4, count: 64) + [UInt8](repeating: 0x22, count: 8)
            + [UInt8](repeating: 0xAA, count: 4) + [0x00, 0x38]
        let expected: [Float] = (0..<256).map { (e: Int) -> Float in
            let n = e / 128, j = (e % 128) / 32, l = e % 32
            return Float(j - ((n == 0) == (l < 16) ? 0 : 4))
        }
        #expect(expected[0] == 0 && expected[16] == -4 && expected[144] == 0 && expected[96] == 3)
        for isa in Dequantize.isaLevels { #expect(try run(.q3_K, block, isa: isa) == expected) }
    }

    @Test func iq4_NLByHand() throws {
        // d = 1; byte j has low nibble j and high nibble 15 − j: element j = table[j],
        // element j + 16 = table[15 − j].
        let block: [UInt8] = [0x00, 0x3C] + ramp
        let low: [Float] = (0..<16).map { (j: Int) -> Float in Float(Reference.iq4Values[j]) }
        let high: [Float] = (0..<16).map { (j: Int) -> Float in Float(Reference.iq4Values[15 - j]) }
        let expected = low + high
        #expect(expected[0] == -127 && expected[15] == 113 && expected[16] == 113)
        for isa in Dequantize.isaLevels { #expect(try run(.iq4_NL, block, isa: isa) == expected) }
    }

    @Test func iq4_XSByHand() throws {
        // d = 0.5; group g's 6-bit scale is 33 + g (low nibble g + 1, high pair 2), so dl = (g + 1) / 2;
        // every group's codes are the ramp as in IQ4_NL.
        let low: [UInt8] = [0x21, 0x43, 0x65, 0x87]  // scale nibbles 1, 2 | 3, 4 | 5, 6 | 7, 8
        let codes: [UInt8] = (0..<8).flatMap { (_: Int) -> [UInt8] in ramp }
        // High pairs 2, 2, 2, 2, 2, 2, 2, 1 (0x6AAA): group 7's scale is 8 + 16 = 24, dl = −4.
        let block: [UInt8] = [0x00, 0x38, 0xAA, 0x6A] + low + codes
        var expected: [Float] = []
        for g in 0..<8 {
            let dl = g == 7 ? -4 : 0.5 * Float(g + 1)
            expected += (0..<16).map { (j: Int) -> Float in dl * Float(Reference.iq4Values[j]) }
            expected += (0..<16).map { (j: Int) -> Float in dl * Float(Reference.iq4Values[15 - j]) }
        }
        #expect(expected[0] == -63.5 && expected[192] == -444.5 && expected[224] == 508)
        for isa in Dequantize.isaLevels { #expect(try run(.iq4_XS, block, isa: isa) == expected) }
    }

    @Test func scalarTypesByHand() throws {
        #expect(try run(.f32, [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x20, 0xC1]) == [1, -10])
        // 1, -2, 0.5, 65504 (largest half), 2^-24 (smallest subnormal half).
        let halves: [UInt8] = [0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38, 0xFF, 0x7B, 0x01, 0x00]
        #expect(try run(.f16, halves) == [1, -2, 0.5, 65504, 0x1p-24])
        #expect(try run(.bf16, [0x80, 0x3F, 0x40, 0xC0]) == [1, -3])
    }

    @Test func halfIsExactForAll65536Values() throws {
        let all = (0...0xFFFF).map { UInt16($0) }
        let bytes = all.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
        for isa in Dequantize.isaLevels {
            let out = try run(.f16, bytes, isa: isa)
            var mismatches: [String] = []
            for h in all where out[Int(h)].bitPattern != Reference.half(h).bitPattern {
                mismatches.append("0x\(String(h, radix: 16)): \(out[Int(h)].bitPattern) vs \(Reference.half(h).bitPattern)")
            }
            #expect(mismatches.isEmpty, "isa \(isa): \(mismatches.count) mismatches, first \(mismatches.prefix(5))")
        }
        for h in all { #expect(Dequantize.halfToFloat(h).bitPattern == Reference.half(h).bitPattern) }
    }

    @Test func bfloat16IsExactForAll65536Values() throws {
        let bytes = (0...0xFFFF).flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
        let out = try run(.bf16, bytes)
        let bad = (0...0xFFFF).filter { out[$0].bitPattern != UInt32($0) << 16 }
        #expect(bad.isEmpty, "first mismatches: \(bad.prefix(5))")
    }

    @Test(arguments: [GGMLType.f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K,
                      .q2_K, .q3_K, .iq4_NL, .iq4_XS])
    func randomBlocksMatchReferenceBitForBit(_ type: GGMLType) throws {
        var rng = SplitMix64(seed: UInt64(type.rawValue) + 1)
        let bytes = Reference.randomBlocks(type, elements: 256 * 5, rng: &rng)
        let expected = Reference.dequantize(type, bytes)
        for isa in Dequantize.isaLevels {
            let out = try run(type, bytes, isa: isa)
            let bad = (0..<out.count).filter { out[$0].bitPattern != expected[$0].bitPattern }
            #expect(bad.isEmpty, "isa \(isa): \(bad.count) mismatches, first \(bad.prefix(5).map { (out[$0], expected[$0]) })")
        }
    }

    @Test func unsupportedTypeIsTheSpecificError() {
        var out = [Float](repeating: 0, count: 256)
        let bytes = [UInt8](repeating: 0, count: 512)
        #expect(throws: TensorError.unsupportedType(.iq2_XXS, context: "dequantize")) {
            try bytes.withUnsafeBytes { src in
                try Dequantize.run(.iq2_XXS, from: src.baseAddress!, count: 256, into: &out)
            }
        }
        #expect(!Dequantize.isSupported(.q8_1))
        let message = TensorError.unsupportedType(.iq2_XXS, context: "blk.0.ffn_up.weight").description
        #expect(message.contains("blk.0.ffn_up.weight") && message.contains("IQ2_XXS") && message.contains("Q4_1"))
    }

    @Test func partialBlockIsTheSpecificError() {
        var out = [Float](repeating: 0, count: 48)
        let bytes = [UInt8](repeating: 0, count: 40)
        #expect(throws: TensorError.partialBlock(.q4_1, elements: 48, context: "dequantize")) {
            try bytes.withUnsafeBytes { src in
                try Dequantize.run(.q4_1, from: src.baseAddress!, count: 48, into: &out)
            }
        }
    }
}
