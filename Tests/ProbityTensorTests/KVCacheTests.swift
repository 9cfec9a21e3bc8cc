// The tiled KV cache's attention against plain float64 softmax attention, and the promises that
// make audits reproducible: the same bits at every instruction set level, in a prompt chunk or
// one position at a time, at any thread count.
import CKernels
import Foundation
import Testing
@testable import ProbityTensor

@Suite struct KVCacheTests {
    struct Shape: CustomStringConvertible {
        var kvHeads: Int, group: Int, headDim: Int
        var heads: Int { kvHeads * group }
        var description: String { "kvHeads \(kvHeads) group \(group) headDim \(headDim)" }
    }

    // SmolLM2's shape (3 KV heads of 64, groups of 3), a group of 4 and of 5 (the kernel takes
    // three queries at a time), and head sizes that leave tails at every vector width.
    static let shapes = [
        Shape(kvHeads: 3, group: 3, headDim: 64), Shape(kvHeads: 1, group: 4, headDim: 128),
        Shape(kvHeads: 2, group: 5, headDim: 40), Shape(kvHeads: 2, group: 1, headDim: 7),
        Shape(kvHeads: 1, group: 2, headDim: 96),
    ]

    func random(_ n: Int, _ rng: inout SplitMix64, scale: Float = 1) -> [Float] {
        (0..<n).map { _ in scale * Float.random(in: -1...1, using: &rng) }
    }

    /// Softmax attention in double over positions 0 ... position (the last `window` of them when
    /// given), for query head h of row `q`.
    func reference(_ shape: Shape, q: [Float], keys: [Float], values: [Float], position: Int,
                   head h: Int, scale: Float, window: Int? = nil) -> [Double] {
        let d = shape.headDim, kvWidth = shape.kvHeads * d, g = h / shape.group
        let first = window.map { max(0, position - $0 + 1) } ?? 0
        let span = first...position
        let scores = span.map { t in
            Double(scale) * (0..<d).reduce(0.0) { $0 + Double(q[h * d + $1]) * Double(keys[t * kvWidth + g * d + $1]) }
        }
        let m = scores.max() ?? 0
        let e = scores.map { Foundation.exp($0 - m) }
        let sum = e.reduce(0, +)
        return (0..<d).map { i in
            span.enumerated().reduce(0.0) { $0 + e[$1.offset] * Double(values[$1.element * kvWidth + g * d + i]) } / sum
        }
    }

    /// Stores `length` random positions and attends rows `rows` (a chunk when `chunk`, else one
    /// row per call) on `threads` threads; returns the outputs and the inputs.
    func run(_ shape: Shape, length: Int, rows: Range<Int>, chunk: Bool, threads: Int, seed: UInt64,
             window: Int? = nil, storage: KVCacheStorage = .f32) -> (out: [Float], q: [Float], keys: [Float], values: [Float])
    {
        var rng = SplitMix64(seed: seed)
        let d = shape.headDim, kvWidth = shape.kvHeads * d, qWidth = shape.heads * d
        let keys = random(length * kvWidth, &rng, scale: 2), values = random(length * kvWidth, &rng)
        let q = random(rows.count * qWidth, &rng, scale: 2)
        let cache = KVCache(blocks: 2, kvHeads: shape.kvHeads, headDim: d, heads: shape.heads, capacity: length + 3,
                            storage: storage)
        cache.store(block: 1, keys: keys, values: values, rows: length, at: 0)
        let pool = ThreadPool(threads: threads)
        var out = [Float](repeating: .nan, count: rows.count * qWidth)
        let scale = 1 / Float(d).squareRoot()
        q.withUnsafeBufferPointer { qp in
            out.withUnsafeMutableBufferPointer { op in
                guard let qb = qp.baseAddress, let ob = op.baseAddress else { return }
                if chunk {
                    cache.attend(block: 1, queries: qb, heads: shape.heads, rows: rows.count, start: rows.lowerBound,
                                 scale: scale, window: window, into: ob, pool: pool)
                } else {
                    for i in 0..<rows.count {
                        cache.attend(block: 1, queries: qb + i * qWidth, heads: shape.heads, rows: 1,
                                     start: rows.lowerBound + i, scale: scale, window: window,
                                     into: ob + i * qWidth, pool: pool)
                    }
                }
            }
        }
        return (out, q, keys, values)
    }

    @Test(arguments: shapes) func matchesFloat64Attention(shape: Shape) {
        // Spans inside one tile, at its edge, just past it and over several tiles.
        let length = 200
        let rows = [0, 1, 62, 63, 64, 65, 127, 128, 199]
        for chunk in [false, true] {
            let range = 0..<length
            let (out, q, keys, values) = run(shape, length: length, rows: range, chunk: chunk, threads: 2, seed: 11)
            let d = shape.headDim, qWidth = shape.heads * d
            for i in rows {
                for h in 0..<shape.heads {
                    let rowQ = Array(q[(i * qWidth)..<((i + 1) * qWidth)])
                    let want = reference(shape, q: rowQ, keys: keys, values: values, position: i, head: h,
                                         scale: 1 / Float(d).squareRoot())
                    let got = out[(i * qWidth + h * d)..<(i * qWidth + (h + 1) * d)]
                    let worst = zip(got, want).map { abs(Double($0) - $1) }.max() ?? 0
                    #expect(worst <= 2e-6, "\(shape) chunk \(chunk) row \(i) head \(h): off by \(worst)")
                }
            }
        }
    }

    /// Sliding-window attention (Gemma 3's local blocks): windows inside a tile, across a tile
    /// edge and over several tiles, in a chunk and one row at a time, against float64.
    @Test(arguments: shapes) func slidingWindowMatchesFloat64Attention(shape: Shape) {
        let length = 200
        let rows = [0, 3, 63, 64, 65, 100, 130, 199]
        for window in [1, 5, 64, 70, 129] {
            for chunk in [false, true] {
                let (out, q, keys, values) = run(shape, length: length, rows: 0..<length, chunk: chunk, threads: 2,
                                                 seed: 17, window: window)
                let d = shape.headDim, qWidth = shape.heads * d
                for i in rows {
                    for h in 0..<shape.heads {
                        let rowQ = Array(q[(i * qWidth)..<((i + 1) * qWidth)])
                        let want = reference(shape, q: rowQ, keys: keys, values: values, position: i, head: h,
                                             scale: 1 / Float(d).squareRoot(), window: window)
                        let got = out[(i * qWidth + h * d)..<(i * qWidth + (h + 1) * d)]
                        let worst = zip(got, want).map { abs(Double($0) - $1) }.max() ?? 0
                        #expect(worst <= 2e-6, "\(shape) window \(window) chunk \(chunk) row \(i) head \(h): off by \(worst)")
                    }
                }
            }
        }
        // A window at least as long as the sequence is no window, bit for bit.
        let plain = run(shape, length: 150, rows: 0..<150, chunk: true, threads: 2, seed: 5).out
        #expect(run(shape, length: 150, rows: 0..<150, chunk: true, threads: 2, seed: 5, window: 150).out == plain)
        #expect(run(shape, length: 150, rows: 0..<150, chunk: false, threads: 1, seed: 5, window: 70).out
                == run(shape, length: 150, rows: 0..<150, chunk: true, threads: 2, seed: 5, window: 70).out)
    }

    @Test(arguments: shapes, KVCacheStorage.allCases)
    func sameBitsInAChunkAloneAndAtAnyThreadCount(shape: Shape, storage: KVCacheStorage) {
        let alone = run(shape, length: 150, rows: 0..<150, chunk: false, threads: 1, seed: 5, storage: storage).out
        #expect(run(shape, length: 150, rows: 0..<150, chunk: true, threads: 2, seed: 5, storage: storage).out == alone,
                "\(shape)")
        #expect(run(shape, length: 150, rows: 0..<150, chunk: false, threads: 2, seed: 5, storage: storage).out == alone,
                "\(shape)")
        #expect(run(shape, length: 150, rows: 100..<150, chunk: true, threads: 1, seed: 5, storage: storage).out.count
                == 50 * shape.heads * shape.headDim)
        #expect(!alone.contains { !$0.isFinite })
    }

    /// The keys and values as a half cache holds them: each rounded to the nearest binary16.
    func rounded(_ x: [Float]) -> [Float] { x.map { Float(Float16($0)) } }

    /// A half cache attends exactly as float64 attention over its rounded keys and values (the
    /// float cache's tolerance, 2e-6), and within 5e-3 of float64 attention over the unrounded ones:
    /// halves keep 11 significant bits (relative error ≤ 2^-11 per number), and these scores reach
    /// about ±6 (keys and queries up to 2 in magnitude, 64 to 128 dimensions), where an error of a
    /// few 1e-3 in a score moves a weight by as much (the worst measured here is given below).
    @Test(arguments: shapes) func halfCacheMatchesFloat64Attention(shape: Shape) {
        let length = 200
        let rows = [0, 1, 63, 64, 65, 128, 199]
        var worstRounded = 0.0, worstExact = 0.0
        for chunk in [false, true] {
            for window in [nil, 70] as [Int?] {
                let (out, q, keys, values) = run(shape, length: length, rows: 0..<length, chunk: chunk, threads: 2,
                                                 seed: 23, window: window, storage: .f16)
                let (hk, hv) = (rounded(keys), rounded(values))
                let d = shape.headDim, qWidth = shape.heads * d, scale = 1 / Float(d).squareRoot()
                for i in rows {
                    let rowQ = Array(q[(i * qWidth)..<((i + 1) * qWidth)])
                    for h in 0..<shape.heads {
                        let got = out[(i * qWidth + h * d)..<(i * qWidth + (h + 1) * d)]
                        let onHalves = reference(shape, q: rowQ, keys: hk, values: hv, position: i, head: h, scale: scale,
                                                 window: window)
                        let onFloats = reference(shape, q: rowQ, keys: keys, values: values, position: i, head: h,
                                                 scale: scale, window: window)
                        worstRounded = max(worstRounded, zip(got, onHalves).map { abs(Double($0) - $1) }.max() ?? 0)
                        worstExact = max(worstExact, zip(got, onFloats).map { abs(Double($0) - $1) }.max() ?? 0)
                    }
                }
            }
        }
        #expect(worstRounded <= 2e-6, "\(shape): off by \(worstRounded) from attention over the rounded values")
        #expect(worstExact <= 5e-3, "\(shape): off by \(worstExact) from attention over the float values")
        #expect(worstExact > 0, "the half cache rounds")
    }

    @Test(arguments: KVCacheStorage.allCases) func aCopiedPrefixAttendsAsTheOriginal(storage: KVCacheStorage) {
        // A fork copies its parent's first n positions, then stores its own after them; attention
        // over the copy has the original's bits. n = 45 ends inside a tile.
        var rng = SplitMix64(seed: 9)
        let (blocks, kvHeads, headDim, heads) = (2, 2, 16, 4)
        let capacity = 100, n = 45, more = 20
        let parent = KVCache(blocks: blocks, kvHeads: kvHeads, headDim: headDim, heads: heads, capacity: capacity,
                             storage: storage)
        let child = KVCache(blocks: blocks, kvHeads: kvHeads, headDim: headDim, heads: heads, capacity: n + more,
                            storage: storage)
        let k = random((n + more) * kvHeads * headDim, &rng), v = random((n + more) * kvHeads * headDim, &rng)
        let q = random(more * heads * headDim, &rng)
        let pool = ThreadPool(threads: 2)
        for l in 0..<blocks { parent.store(block: l, keys: k, values: v, rows: n, at: 0) }
        child.copyPrefix(of: parent, positions: n)
        let width = kvHeads * headDim
        for l in 0..<blocks {
            Array(k[(n * width)...]).withUnsafeBufferPointer { ks in
                Array(v[(n * width)...]).withUnsafeBufferPointer { vs in
                    parent.store(block: l, keys: ks.baseAddress!, values: vs.baseAddress!, rows: more, at: n)
                    child.store(block: l, keys: ks.baseAddress!, values: vs.baseAddress!, rows: more, at: n)
                }
            }
            var a = [Float](repeating: 0, count: more * heads * headDim), b = a
            parent.attend(block: l, queries: q, heads: heads, rows: more, start: n, scale: 0.25, into: &a, pool: pool)
            child.attend(block: l, queries: q, heads: heads, rows: more, start: n, scale: 0.25, into: &b, pool: pool)
            #expect(a == b, "block \(l)")
            #expect(!a.contains { !$0.isFinite })
        }
    }

    @Test(arguments: shapes) func tileKernelHasTheSameBitsAtEveryLevel(shape: Shape) {
        var rng = SplitMix64(seed: 9)
        let d = shape.headDim, t = KVCache.tile
        let keys = random(d * t, &rng, scale: 3), values = random(t * d, &rng), q = random(shape.group * d, &rng)
        for count in [1, 5, 32, 33, 63, 64] {
            var results: [[Float]] = []
            for isa in Dequantize.isaLevels {
                var records = [Float](repeating: .nan, count: shape.group * (d + 2))
                pk_attention_tile(isa, q, shape.group, d, 0.125, keys, values, count, &records)
                results.append(records)
            }
            #expect(results.allSatisfy { $0 == results[0] }, "\(shape) count \(count)")
            #expect(results[0].allSatisfy { $0.isFinite }, "\(shape) count \(count)")
            // Starting at `from` gives what the same positions alone would, at every level.
            for from in [1, count / 2, count - 1] where from > 0 && from < count {
                var shifted = [Float](repeating: .nan, count: shape.group * (d + 2))
                var alone = [Float](repeating: .nan, count: shape.group * (d + 2))
                let keysAlone = (0..<d).flatMap { j in (0..<t).map { $0 + from < t ? keys[j * t + $0 + from] : 0 } }
                for isa in Dequantize.isaLevels {
                    pk_attention_tile_from(isa, q, shape.group, d, 0.125, keys, values, from, count, &shifted)
                    pk_attention_tile(isa, q, shape.group, d, 0.125, keysAlone, Array(values[(from * d)...]) + [Float](repeating: 0, count: from * d),
                                      count - from, &alone)
                    #expect(shifted == alone, "\(shape) isa \(isa) from \(from) count \(count)")
                }
            }
        }
    }

    /// The half tile kernel widens exactly: at every level it gives the bits of the float kernel on
    /// the widened tile, so all levels agree, windows included.
    @Test(arguments: shapes) func halfTileKernelIsTheFloatKernelOnWidenedValues(shape: Shape) {
        var rng = SplitMix64(seed: 31)
        let d = shape.headDim, t = KVCache.tile
        let keys = random(d * t, &rng, scale: 3), values = random(t * d, &rng), q = random(shape.group * d, &rng)
        let hk = keys.map { HalfPrecision.halfBits($0) }, hv = values.map { HalfPrecision.halfBits($0) }
        let wk = hk.map { Float(Float16(bitPattern: $0)) }, wv = hv.map { Float(Float16(bitPattern: $0)) }
        for count in [1, 5, 32, 33, 63, 64] {
            for from in Set([0, 1, count / 2, count - 1]) where from < count {
                var results: [[Float]] = []
                for isa in Dequantize.isaLevels {
                    var half = [Float](repeating: .nan, count: shape.group * (d + 2)), float = half
                    pk_attention_tile_f16_from(isa, q, shape.group, d, 0.125, hk, hv, from, count, &half)
                    pk_attention_tile_from(isa, q, shape.group, d, 0.125, wk, wv, from, count, &float)
                    #expect(half == float, "\(shape) isa \(isa) from \(from) count \(count)")
                    results.append(half)
                }
                #expect(results.allSatisfy { $0 == results[0] }, "\(shape) from \(from) count \(count)")
                #expect(results[0].allSatisfy { $0.isFinite })
            }
        }
    }

    /// Narrowing to halves (the cache's stores): F16C and the portable path give the same bits, those
    /// of the tested reference rounding (HalfPrecision.halfBits, ties to even), NaN aside, where
    /// both keep a quiet NaN of the same sign; a stride scatters them.
    @Test func narrowingToHalvesIsTheSameAtEveryLevel() {
        var rng = SplitMix64(seed: 41)
        var inputs: [Float] = [0, -0, 1, -1, 65504, 65519.99, 65520, -65520, 1e-8, 2.9802322e-8, 2.9802326e-8, 5.9604645e-8,
                               6.1035156e-5, 6.1e-5, .infinity, -.infinity, .nan, -.nan, .greatestFiniteMagnitude,
                               .leastNonzeroMagnitude]
        for _ in 0..<100_000 {
            inputs.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()) & 0x8FFF_FFFF | 0x3000_0000))
            inputs.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())))
        }
        var byLevel: [[UInt16]] = []
        for isa in Dequantize.isaLevels {
            var out = [UInt16](repeating: 0, count: inputs.count)
            pk_float_to_half(isa, inputs, inputs.count, &out, 1)
            byLevel.append(out)
        }
        #expect(byLevel.allSatisfy { $0 == byLevel[0] })
        var bad = 0
        for (f, h) in zip(inputs, byLevel[0]) {
            let want = HalfPrecision.halfBits(f)
            if f.isNaN ? (h & 0x7C00 != 0x7C00 || h & 0x200 == 0 || h & 0x8000 != want & 0x8000) : h != want { bad += 1 }
        }
        #expect(bad == 0)
        let src: [Float] = (0..<19).map { Float($0) * 0.37 - 3 }
        for isa in Dequantize.isaLevels {
            var strided = [UInt16](repeating: 0xFFFF, count: 19 * 5)
            pk_float_to_half(isa, src, 19, &strided, 5)
            #expect((0..<(19 * 5)).allSatisfy { strided[$0] == ($0 % 5 == 0 ? HalfPrecision.halfBits(src[$0 / 5]) : 0xFFFF) })
        }
    }

    @Test func halfCacheIsHalfTheBytes() {
        #expect(KVCache.bytesPerPosition(blocks: 30, kvHeads: 3, headDim: 64, storage: .f32) == 46_080)
        #expect(KVCache.bytesPerPosition(blocks: 30, kvHeads: 3, headDim: 64, storage: .f16) == 23_040)
    }

    @Test func mergingTilesIsSoftmaxOverTheirUnion() {
        // Two records of one position each: weights e^(1 - 3) and 1 over the values 10 and 20.
        let records: [Float] = [10, 1, 1, 20, 3, 1]
        let w = Foundation.exp(-2.0)
        var rng = SplitMix64(seed: 13)
        let dim = 37, tiles = 5, stride = dim + 4
        let many = random(tiles * stride, &rng, scale: 4).enumerated().map { $0.offset % stride == dim + 1 ? abs($0.element) + 1 : $0.element }
        var merged: [[Float]] = []
        for isa in Dequantize.isaLevels {
            var out: [Float] = [0]
            pk_attention_merge(isa, records, 2, 3, 1, &out)
            #expect(abs(Double(out[0]) - (10 * w + 20) / (w + 1)) < 1e-5, "isa \(isa)")
            var outMany = [Float](repeating: .nan, count: dim)
            pk_attention_merge(isa, many, tiles, stride, dim, &outMany)
            merged.append(outMany)
        }
        #expect(merged.allSatisfy { $0 == merged[0] })
    }
}
