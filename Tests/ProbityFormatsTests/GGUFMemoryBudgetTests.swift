// Metadata arrays are kept typed (a uint8 element costs one byte, not a 24-byte `GGUFValue`), and
// the decoded metadata and tensor infos are charged against `GGUFLimits.maxDecodedBytes` before
// they are allocated, so a file within every count cap still cannot make the reader take more.

import Foundation
import Testing
@testable import ProbityFormats

@Suite struct GGUFMemoryBudgetTests {
    let p = "bad.gguf"

    /// The budget error's parts, when `e` is one.
    func budgetRefusal(_ e: FormatError?) -> (offset: Int, what: String, value: UInt64)? {
        guard case let .limitExceeded(_, offset, what, value, limit)? = e, limit == GGUFLimits.maxDecodedBytes else {
            return nil
        }
        return (offset, what, value)
    }

    @Test func arraysAreReadIntoTypedStorage() throws {
        var r = RawBytes.gguf(tensors: 0, pairs: 4)
        r.str("bytes"); r.u32(9); r.u32(0); r.u64(3); r.raw([7, 8, 9])
        r.str("floats"); r.u32(9); r.u32(6); r.u64(2); r.f32(0.5); r.f32(-2)
        r.str("none"); r.u32(9); r.u32(5); r.u64(0)
        r.str("nested"); r.u32(9); r.u32(9); r.u64(2); r.u32(8); r.u64(1); r.str("x"); r.u32(0); r.u64(0)
        let f = try GGUFFile(bytes: r.bytes, name: p)
        let bytes = try #require(f.value("bytes")?.arrayValue)
        guard case let .uint8(stored) = bytes.storage else { Issue.record("uint8 elements stored as \(bytes.storage)"); return }
        #expect(stored == [7, 8, 9] && Array(bytes) == [.uint8(7), .uint8(8), .uint8(9)])
        #expect(f.value("floats")?.floatArray == [0.5, -2])
        // An empty array keeps the type it was declared with, and writes back with it.
        #expect(f.value("none")?.arrayValue?.elementTypeID == 5)
        #expect(f.value("nested") == .array([.array([.string("x")]), .array([])]))
        var w = GGUFWriter(name: "again.gguf")
        for key in f.metadataKeys { try w.set(key, try #require(f.value(key))) }
        let again = try GGUFFile(bytes: w.bytes(), name: "again.gguf")
        for key in f.metadataKeys { #expect(again.value(key) == f.value(key), "\(key)") }
        #expect(again.value("none")?.arrayValue?.elementTypeID == 5)
    }

    /// Within the array cap, within the file, but 64 MiB of Swift strings: refused at the array,
    /// before any string is made (4,194,304 empty strings, 32 MiB of file).
    @Test func stringsPastTheBudget() {
        let n = GGUFLimits.maxDecodedBytes / 16
        var s = RawBytes.gguf(tensors: 0, pairs: 1)
        s.str("a"); s.u32(9); s.u32(8); s.u64(UInt64(n)); s.zeros(8 * n)
        let e = ggufError(s)
        let refusal = budgetRefusal(e)
        #expect(refusal?.offset == 41 && refusal?.what == "memory for the decoded metadata and tensor infos (bytes, counting array 'a')")
        #expect((refusal?.value ?? 0) > UInt64(GGUFLimits.maxDecodedBytes))
        #expect(e?.description.hasPrefix("bad.gguf: offset 41: memory for the decoded metadata and tensor infos") == true)
    }

    /// Strings past 15 bytes live on the heap and are charged for it: a million of 16 bytes each
    /// (24 MB of file) would cost 16 MB inline and 64 MB of heap; the budget runs out among them.
    @Test func heapStringsAreCharged() {
        let n = 1_000_000
        var s = RawBytes.gguf(tensors: 0, pairs: 1)
        s.str("a"); s.u32(9); s.u32(8); s.u64(UInt64(n))
        for _ in 0..<n { s.str("0123456789abcdef") }
        let refusal = budgetRefusal(ggufError(s))
        #expect(refusal?.what == "memory for the decoded metadata and tensor infos (bytes, counting 'a' string)")
        #expect((refusal?.offset ?? 0) > 41 + 8 + 24 * 700_000)
    }

    /// The largest array the caps allow, of uint8, costs its 16 MiB and is read.
    @Test func aFullUInt8ArrayFits() throws {
        let n = GGUFLimits.maxArrayLength
        var s = RawBytes.gguf(tensors: 0, pairs: 1)
        s.str("a"); s.u32(9); s.u32(0); s.u64(UInt64(n)); s.zeros(n)
        let f = try GGUFFile(bytes: s.bytes, name: p)
        #expect(f.value("a")?.arrayValue?.count == n)
    }

    /// Counts at their caps, with every byte present, are charged for their tables up front.
    @Test func tablesAreChargedUpFront() {
        let pairs = GGUFLimits.maxMetadataCount
        var m = RawBytes.gguf(tensors: 0, pairs: UInt64(pairs))
        m.zeros(pairs * 13)
        let mr = budgetRefusal(ggufError(m))
        #expect(mr?.offset == 16 && mr?.what.hasSuffix("(bytes, counting metadata count)") == true)

        let tensors = GGUFLimits.maxTensorCount
        var t = RawBytes.gguf(tensors: UInt64(tensors), pairs: 0)
        t.zeros(tensors * 32)
        let tr = budgetRefusal(ggufError(t))
        #expect(tr?.offset == 8 && tr?.what.hasSuffix("(bytes, counting tensor count)") == true)
    }
}
