// Malformed GGUF files built byte by byte: each must fail with its own specific FormatError,
// never a trap and never an allocation sized by an unchecked count.

import Testing
import ProbityFormats

@Suite struct GGUFMalformedTests {
    let p = "bad.gguf"

    @Test func badMagic() {
        var r = RawBytes()
        r.raw(Array("GGML".utf8)); r.u32(3); r.u64(0); r.u64(0)
        #expect(ggufError(r) == .badMagic(path: p, found: Array("GGML".utf8)))
        #expect(ggufError(RawBytes()) == .truncated(path: p, offset: 0, what: "magic", needed: 4, left: 0))
    }

    @Test func versions() {
        #expect(ggufError(.gguf(version: 0, tensors: 0, pairs: 0)) == .unsupportedVersion(path: p, version: 0))
        #expect(ggufError(.gguf(version: 1, tensors: 0, pairs: 0)) == .unsupportedVersion(path: p, version: 1))
        #expect(ggufError(.gguf(version: 0xFFFF_FFF0, tensors: 0, pairs: 0))
                == .unsupportedVersion(path: p, version: 0xFFFF_FFF0))
        #expect(ggufError(.gguf(version: 0x0300_0000, tensors: 0, pairs: 0)) == .bigEndian(path: p))
        #expect(ggufError(.gguf(version: 2, tensors: 0, pairs: 0)) == nil)
    }

    @Test func truncatedInHeader() {
        var r = RawBytes()
        r.raw(Array("GGUF".utf8)); r.u32(3); r.zeros(4)
        #expect(ggufError(r) == .truncated(path: p, offset: 8, what: "tensor count", needed: 8, left: 4))
    }

    @Test func truncatedInMetadata() {
        var r = RawBytes.gguf(tensors: 0, pairs: 1)
        r.str("k"); r.u32(4); r.raw([1, 2])
        #expect(ggufError(r) == .truncated(path: p, offset: 37, what: "value of 'k'", needed: 4, left: 2))
    }

    @Test func truncatedInTensorInfos() {
        // Long enough to pass the count check (a tensor info takes at least 32 bytes).
        let name = "blk.0.attn_q.weight"
        var r = RawBytes.gguf(tensors: 1, pairs: 0)
        r.str(name); r.u32(1); r.raw([32, 0, 0])
        #expect(ggufError(r) == .truncated(path: p, offset: 55, what: "dimension 0 of '\(name)'", needed: 8, left: 3))
        var short = RawBytes.gguf(tensors: 1, pairs: 0)
        short.str("t"); short.u32(1); short.raw([32, 0, 0])
        #expect(ggufError(short) == .lengthPastEnd(path: p, offset: 8, what: "tensor count", length: 1, left: 24, unitSize: 32))
    }

    @Test func truncatedInPaddingAndData() {
        var r = RawBytes.gguf(tensors: 1, pairs: 0)
        r.tensorInfo("t", dims: [8], type: 0, offset: 0)  // ends at 57
        #expect(ggufError(r) == .truncated(path: p, offset: 57, what: "padding before the tensor data",
                                           needed: 7, left: 0))
        r.padTo(32)
        r.zeros(16)  // an F32 [8] needs 32
        #expect(ggufError(r) == .tensorOutOfBounds(path: p, tensor: "t", start: 0, count: 32, available: 16))
        r.zeros(16)
        #expect(ggufError(r) == nil)
    }

    @Test func stringLengthPastEnd() {
        var r = RawBytes.gguf(tensors: 0, pairs: 1)
        r.u64(UInt64(Int64.max)); r.zeros(8)
        let e = ggufError(r)
        #expect(e == .lengthPastEnd(path: p, offset: 24, what: "metadata key length", length: UInt64(Int64.max), left: 8))
        #expect(e?.description == "bad.gguf: offset 24: metadata key length 9223372036854775807 exceeds the 8 bytes left in the file")

        var v = RawBytes.gguf(tensors: 0, pairs: 1)
        v.str("k"); v.u32(8); v.u64(1000); v.raw(Array("abc".utf8))
        #expect(ggufError(v) == .lengthPastEnd(path: p, offset: 37, what: "'k' string length", length: 1000, left: 3))
    }

    @Test func keyLongerThanCap() {
        var r = RawBytes.gguf(tensors: 0, pairs: 1)
        r.str(String(repeating: "k", count: 70_000)); r.u32(0); r.u8(0)
        #expect(ggufError(r) == .limitExceeded(path: p, offset: 24, what: "metadata key length", value: 70_000,
                                               limit: GGUFLimits.maxNameLength))
    }

    /// llama.cpp keeps tensor names in GGML_MAX_NAME (64) bytes with the NUL: 63 is the longest.
    @Test func tensorNameOf64BytesRefused() throws {
        var w = GGUFWriter(name: "w.gguf")
        try w.addTensor(name: String(repeating: "n", count: 63), shape: [1], floats: [1])
        #expect(try GGUFFile(bytes: w.bytes(), name: p).tensors.first?.name.utf8.count == 63)
        #expect(formatError { try w.addTensor(name: String(repeating: "m", count: 64), shape: [1], floats: [1]) }
                == .limitExceeded(path: "w.gguf", offset: 0, what: "tensor name length of '\(String(repeating: "m", count: 64))'",
                                  value: 64, limit: 63))
        var r = RawBytes.gguf(tensors: 1, pairs: 0)
        r.str(String(repeating: "t", count: 64)); r.u32(1); r.u64(1); r.u32(0); r.u64(0)
        let e = ggufError(r)
        #expect(e == .limitExceeded(path: p, offset: 24, what: "tensor name length", value: 64, limit: GGUFLimits.maxTensorNameLength))
        #expect(e?.description == "bad.gguf: offset 24: tensor name length 64 exceeds the limit of 63")
    }

    @Test func hugeArrayCounts() {
        var r = RawBytes.gguf(tensors: 0, pairs: 1)
        r.str("a"); r.u32(9); r.u32(0); r.u64(1 << 62)
        #expect(ggufError(r) == .lengthPastEnd(path: p, offset: 41, what: "array length of 'a'", length: 1 << 62, left: 0))
        // Strings take at least 8 bytes each, so 2^62 of them overflow 64 bits: still a clean error.
        var s = RawBytes.gguf(tensors: 0, pairs: 1)
        s.str("a"); s.u32(9); s.u32(8); s.u64(1 << 62); s.zeros(100)
        #expect(ggufError(s) == .lengthPastEnd(path: p, offset: 41, what: "array length of 'a'", length: 1 << 62, left: 100, unitSize: 8))
        // 200 empty strings need 1600 bytes of lengths: counted before allocating.
        var t = RawBytes.gguf(tensors: 0, pairs: 1)
        t.str("a"); t.u32(9); t.u32(8); t.u64(200); t.zeros(1000)
        let e = ggufError(t)
        #expect(e == .lengthPastEnd(path: p, offset: 41, what: "array length of 'a'", length: 200, left: 1000, unitSize: 8))
        #expect(e?.description == "bad.gguf: offset 41: array length of 'a' 200 needs at least 1600 bytes (8 each), but only 1000 are left in the file")
    }

    @Test func hugeTensorAndMetadataCounts() {
        var r = RawBytes.gguf(tensors: 1 << 62, pairs: 0)
        #expect(ggufError(r) == .lengthPastEnd(path: p, offset: 8, what: "tensor count", length: 1 << 62, left: 8, unitSize: 32))
        r = RawBytes.gguf(tensors: 0, pairs: UInt64.max)
        #expect(ggufError(r) == .lengthPastEnd(path: p, offset: 16, what: "metadata count", length: UInt64.max, left: 0, unitSize: 13))
    }

    /// The caps themselves: each count is one over its cap with every byte it claims present, so
    /// the past-the-end check passes and only the cap can refuse it (files of 13 to 33 MB).
    @Test func capsRefuseWhatTheFileCouldHold() {
        let string = GGUFLimits.maxStringLength + 1
        var s = RawBytes.gguf(tensors: 0, pairs: 1)
        s.str("k"); s.u32(8); s.u64(UInt64(string)); s.zeros(string)
        #expect(ggufError(s) == .limitExceeded(path: p, offset: 37, what: "'k' string length", value: UInt64(string),
                                               limit: GGUFLimits.maxStringLength))

        let array = GGUFLimits.maxArrayLength + 1
        var a = RawBytes.gguf(tensors: 0, pairs: 1)
        a.str("a"); a.u32(9); a.u32(0); a.u64(UInt64(array)); a.zeros(array)
        let e = ggufError(a)
        #expect(e == .limitExceeded(path: p, offset: 41, what: "array length of 'a'", value: UInt64(array),
                                    limit: GGUFLimits.maxArrayLength))
        #expect(e?.description == "bad.gguf: offset 41: array length of 'a' 16777217 exceeds the limit of 16777216")

        let tensors = GGUFLimits.maxTensorCount + 1
        var t = RawBytes.gguf(tensors: UInt64(tensors), pairs: 0)
        t.zeros(tensors * 32)
        #expect(ggufError(t) == .limitExceeded(path: p, offset: 8, what: "tensor count", value: UInt64(tensors),
                                               limit: GGUFLimits.maxTensorCount))

        let pairs = GGUFLimits.maxMetadataCount + 1
        var m = RawBytes.gguf(tensors: 0, pairs: UInt64(pairs))
        m.zeros(pairs * 13)
        #expect(ggufError(m) == .limitExceeded(path: p, offset: 16, what: "metadata count", value: UInt64(pairs),
                                               limit: GGUFLimits.maxMetadataCount))
    }

    /// A string of exactly the cap is read.
    @Test func stringCapIsInclusive() throws {
        var s = RawBytes.gguf(tensors: 0, pairs: 1)
        s.str("k"); s.u32(8); s.u64(UInt64(GGUFLimits.maxStringLength)); s.zeros(GGUFLimits.maxStringLength)
        #expect(ggufError(s) == nil)
    }

    /// Builds `depth` arrays nested inside each other around one uint8.
    func nested(_ depth: Int) -> RawBytes {
        var r = RawBytes.gguf(tensors: 0, pairs: 1)
        r.str("n"); r.u32(9)
        for level in 0..<depth {
            r.u32(level < depth - 1 ? 9 : 0); r.u64(1)
        }
        r.u8(7)
        return r
    }

    @Test func nestingDepth() throws {
        let ok = try GGUFFile(bytes: nested(GGUFLimits.maxArrayDepth).bytes, name: p)
        var v = try #require(ok.value("n"))
        for _ in 0..<GGUFLimits.maxArrayDepth { v = try #require(v.arrayValue?.first) }
        #expect(v == .uint8(7))
        guard case let .limitExceeded(_, _, what, value, limit) = ggufError(nested(GGUFLimits.maxArrayDepth + 1)) else {
            Issue.record("expected limitExceeded"); return
        }
        #expect(what == "array nesting depth of 'n'" && value == 9 && limit == 8)
    }

    @Test func duplicateKey() {
        var r = RawBytes.gguf(tensors: 0, pairs: 2)
        r.kvU32("a", 1); r.kvU32("a", 2)
        #expect(ggufError(r) == .duplicateKey(path: p, offset: 41, key: "a"))
    }

    @Test func duplicateTensorName() {
        var r = RawBytes.gguf(tensors: 2, pairs: 0)
        r.tensorInfo("t", dims: [8], type: 0, offset: 0)
        r.tensorInfo("t", dims: [8], type: 0, offset: 32)
        r.padTo(32); r.zeros(64)
        #expect(ggufError(r) == .duplicateTensor(path: p, offset: 57, name: "t"))
    }

    @Test func firstTensorStartsTheDataSection() {
        var r = RawBytes.gguf(tensors: 1, pairs: 0)
        r.tensorInfo("t", dims: [8], type: 0, offset: 64)
        r.padTo(32); r.zeros(96)
        let e = ggufError(r)
        #expect(e == .tensorOffsetMismatch(path: p, tensor: "t", expected: 0, found: 64, after: nil, alignment: 32))
        #expect(e?.description == "bad.gguf: tensor 't': data offset 64, expected 0: the first tensor starts the data section"
                + " (tensors are stored back to back in the order of their infos, each padded to the alignment 32)")
        var far = RawBytes.gguf(tensors: 1, pairs: 0)
        far.tensorInfo("t", dims: [8], type: 0, offset: UInt64.max - 31)
        far.padTo(32); far.zeros(32)
        #expect(ggufError(far) == .tensorOffsetMismatch(path: p, tensor: "t", expected: 0, found: UInt64.max - 31,
                                                         after: nil, alignment: 32))
    }

    @Test func misalignedOffset() {
        var r = RawBytes.gguf(tensors: 1, pairs: 0)
        r.tensorInfo("t", dims: [8], type: 0, offset: 4)
        r.padTo(32); r.zeros(64)
        #expect(ggufError(r) == .misalignedOffset(path: p, tensor: "t", offset: 4, alignment: 32))
    }

    /// Two F32 tensors `a` and `b` with these shapes and data offsets, and `data` zero bytes of data.
    func pair(_ a: [UInt64], at aOffset: UInt64, _ b: [UInt64], at bOffset: UInt64, data: Int,
              alignment: UInt32? = nil, type: UInt32 = 0) -> RawBytes {
        var r = RawBytes.gguf(tensors: 2, pairs: alignment == nil ? 0 : 1)
        if let alignment { r.kvU32("general.alignment", alignment) }
        r.tensorInfo("a", dims: a, type: type, offset: aOffset)
        r.tensorInfo("b", dims: b, type: type, offset: bOffset)
        r.padTo(Int(alignment ?? 32)); r.zeros(data)
        return r
    }

    @Test func shapeSmallerThanItsRoom() {
        // `a` holds 32 bytes but `b` starts at 64: llama.cpp refuses the gap ("has offset 64, expected 32").
        let e = ggufError(pair([8], at: 0, [8], at: 64, data: 96))
        #expect(e == .tensorOffsetMismatch(path: p, tensor: "b", expected: 32, found: 64, after: "a", alignment: 32))
        #expect(e?.description == "bad.gguf: tensor 'b': data offset 64, expected 32, where tensor 'a' ends"
                + " (tensors are stored back to back in the order of their infos, each padded to the alignment 32)")
        // The same with a wider alignment: 32 bytes pad to 64, so 128 is a gap.
        #expect(ggufError(pair([8], at: 0, [8], at: 128, data: 192, alignment: 64))
                == .tensorOffsetMismatch(path: p, tensor: "b", expected: 64, found: 128, after: "a", alignment: 64))
    }

    @Test func overlappingAndReorderedTensors() {
        // `b` inside `a`.
        #expect(ggufError(pair([16], at: 0, [8], at: 32, data: 96))
                == .tensorOffsetMismatch(path: p, tensor: "b", expected: 64, found: 32, after: "a", alignment: 32))
        // Both fit, without gap, but in the other order from their infos.
        #expect(ggufError(pair([8], at: 32, [8], at: 0, data: 64))
                == .tensorOffsetMismatch(path: p, tensor: "a", expected: 0, found: 32, after: nil, alignment: 32))
        // Two tensors at one offset.
        #expect(ggufError(pair([8], at: 0, [8], at: 0, data: 64))
                == .tensorOffsetMismatch(path: p, tensor: "b", expected: 32, found: 0, after: "a", alignment: 32))
    }

    @Test func paddedLayoutsAccepted() throws {
        // 4 bytes pad to 32; the last tensor's padding may be missing from the file (llama.cpp's loader
        // only needs each tensor's bytes inside the file).
        let small = try GGUFFile(bytes: pair([1], at: 0, [1], at: 32, data: 36).bytes, name: p)
        #expect(small.tensors.map(\.offset) == [0, 32] && small.tensors.map(\.byteCount) == [4, 4])
        // Q8_0: a block of 32 elements takes 34 bytes, so a row of 64 takes 68, padded to 96.
        let q = try GGUFFile(bytes: pair([64], at: 0, [32], at: 96, data: 96 + 34, type: 8).bytes, name: p)
        #expect(q.tensors.map(\.byteCount) == [68, 34])
        #expect(ggufError(pair([64], at: 0, [32], at: 64, data: 96 + 34, type: 8))
                == .tensorOffsetMismatch(path: p, tensor: "b", expected: 96, found: 64, after: "a", alignment: 32))
        // Exactly one tensor's bytes short: out of bounds, naming the tensor.
        #expect(ggufError(pair([8], at: 0, [8], at: 32, data: 63))
                == .tensorOutOfBounds(path: p, tensor: "b", start: 32, count: 32, available: 63))
    }

    @Test func shapeDoesNotMatchBytes() {
        // Q4_1 stores blocks of 32: a row of 33 cannot be stored.
        var r = RawBytes.gguf(tensors: 1, pairs: 0)
        r.tensorInfo("q", dims: [33, 2], type: 3, offset: 0)
        r.padTo(32); r.zeros(256)
        #expect(ggufError(r) == .partialBlock(path: p, tensor: "q", type: "Q4_1", shape: [33, 2], blockSize: 32))
        // A shape that needs more bytes than the file holds.
        var big = RawBytes.gguf(tensors: 1, pairs: 0)
        big.tensorInfo("w", dims: [1000], type: 0, offset: 0)
        big.padTo(32); big.zeros(32)
        #expect(ggufError(big) == .tensorOutOfBounds(path: p, tensor: "w", start: 0, count: 4000, available: 32))
    }

    @Test func badDimensions() {
        var zero = RawBytes.gguf(tensors: 1, pairs: 0)
        zero.tensorInfo("t", dims: [0], type: 0, offset: 0)
        #expect(ggufError(zero) == .badDimension(path: p, offset: 37, tensor: "t", index: 0, value: 0))
        var negative = RawBytes.gguf(tensors: 1, pairs: 0)
        negative.tensorInfo("t", dims: [4, UInt64(bitPattern: -1)], type: 0, offset: 0)
        #expect(ggufError(negative) == .badDimension(path: p, offset: 45, tensor: "t", index: 1, value: UInt64.max))
        var five = RawBytes.gguf(tensors: 1, pairs: 0)
        five.tensorInfo("t", dims: [1, 1, 1, 1, 1], type: 0, offset: 0)
        #expect(ggufError(five) == .badDimensionCount(path: p, offset: 33, tensor: "t", count: 5))
        var none = RawBytes.gguf(tensors: 1, pairs: 0)
        none.tensorInfo("t", dims: [], type: 0, offset: 0)
        none.zeros(64)
        #expect(ggufError(none) == .badDimensionCount(path: p, offset: 33, tensor: "t", count: 0))
        var overflow = RawBytes.gguf(tensors: 1, pairs: 0)
        overflow.tensorInfo("t", dims: [1 << 32, 1 << 32], type: 0, offset: 0)
        #expect(ggufError(overflow) == .elementCountOverflow(path: p, tensor: "t", shape: [1 << 32, 1 << 32]))
        // The element count fits, but its size in bytes as F64 does not.
        var bytes = RawBytes.gguf(tensors: 1, pairs: 0)
        bytes.tensorInfo("t", dims: [1 << 61], type: 28, offset: 0)
        #expect(ggufError(bytes) == .elementCountOverflow(path: p, tensor: "t", shape: [1 << 61]))
    }

    @Test func unknownValueType() {
        var r = RawBytes.gguf(tensors: 0, pairs: 1)
        r.str("k"); r.u32(13); r.zeros(8)
        #expect(ggufError(r) == .unknownValueType(path: p, offset: 33, key: "k", typeID: 13))
        var a = RawBytes.gguf(tensors: 0, pairs: 1)
        a.str("k"); a.u32(9); a.u32(99); a.u64(0)
        #expect(ggufError(a) == .unknownValueType(path: p, offset: 37, key: "k", typeID: 99))
    }

    @Test func unknownGGMLType() {
        var r = RawBytes.gguf(tensors: 1, pairs: 0)
        r.tensorInfo("blk.0.attn_q.weight", dims: [32], type: 4, offset: 0)
        r.padTo(32); r.zeros(32)
        let e = ggufError(r)
        #expect(e == .unknownTensorType(path: p, offset: 63, tensor: "blk.0.attn_q.weight", typeID: 4))
        #expect(e?.description.contains("'blk.0.attn_q.weight': unknown ggml type id 4") == true)
    }

    @Test func alignmentNotPowerOfTwo() {
        for bad: UInt32 in [48, 0] {
            var r = RawBytes.gguf(tensors: 0, pairs: 1)
            r.kvU32("general.alignment", bad)
            #expect(ggufError(r) == .badAlignment(path: p, found: "\(bad) (uint32)"))
        }
        var s = RawBytes.gguf(tensors: 0, pairs: 1)
        s.str("general.alignment"); s.u32(8); s.str("32")
        #expect(ggufError(s) == .badAlignment(path: p, found: "\"32\" (string)"))
        // llama.cpp reads it as a uint32 only.
        var wide = RawBytes.gguf(tensors: 0, pairs: 1)
        wide.str("general.alignment"); wide.u32(10); wide.u64(32)
        #expect(ggufError(wide) == .badAlignment(path: p, found: "32 (uint64)"))
    }

    @Test func invalidBoolAndUTF8() {
        var b = RawBytes.gguf(tensors: 0, pairs: 1)
        b.str("flag"); b.u32(7); b.u8(2)
        #expect(ggufError(b) == .invalidBool(path: p, offset: 40, key: "flag", byte: 2))
        var u = RawBytes.gguf(tensors: 0, pairs: 1)
        u.u64(2); u.raw([0xC3, 0x28]); u.u32(0); u.u8(0)
        #expect(ggufError(u) == .invalidUTF8(path: p, offset: 32, what: "metadata key"))
    }

    @Test func typedLookupsNameKeyAndTypes() throws {
        var r = RawBytes.gguf(tensors: 0, pairs: 1)
        r.str("llama.block_count"); r.u32(8); r.str("thirty")
        let f = try GGUFFile(bytes: r.bytes, name: p)
        #expect(formatError { _ = try f.requiredInt("llama.block_count") }
                == .wrongValueType(path: p, key: "llama.block_count", expected: "an integer", found: "string \"thirty\""))
        #expect(formatError { _ = try f.architecture() } == .missingKey(path: p, key: "general.architecture"))
        #expect(try f.optionalInt("llama.context_length") == nil)
    }
}
