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
             window: Int? = nil) -> (out: [Float], q: [Float], keys: [Float], values: [Float])
    {
        var rng = SplitMix64(seed: seed)
        let d = shape.headDim, kvWidth = shape.kvHeads * d, qWidth = shape.heads * d
        let keys = random(length * kvWidth, &rng, scale: 2), values = random(length * kvWidth, &rng)
        let q = random(rows.count * qWidth, &rng, scale: 2)
        let cache = KVCache(blocks: 2, kvHeads: shape.kvHeads, headDim: d, heads: shape.heads, capacity: length + 3)
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

    @Test(arguments: shapes) func sameBitsInAChunkAloneAndAtAnyThreadCount(shape: Shape) {
        let alone = run(shape, length: 150, rows: 0..<150, chunk: false, threads: 1, seed: 5).out
        #expect(run(shape, length: 150, rows: 0..<150, chunk: true, threads: 2, seed: 5).out == alone, "\(shape)")
        #expect(run(shape, length: 150, rows: 0..<150, chunk: false, threads: 2, seed: 5).out == alone, "\(shape)")
        #expect(run(shape, length: 150, rows: 100..<150, chunk: true, threads: 1, seed: 5).out.count == 50 * shape.heads * shape.headDim)
        #expect(!alone.contains { !$0.isFinite })
    }

    @Test func aCopiedPrefixAttendsAsTheOriginal() {
        // A fork copies its parent's first n positions, then stores its own after them; attention
        // over the copy has the original's bits. n = 45 ends inside a tile.
        var rng = SplitMix64(seed: 9)
        let (blocks, kvHeads, headDim, heads) = (2, 2, 16, 4)
        let capacity = 100, n = 45, more = 20
        let parent = KVCache(blocks: blocks, kvHeads: kvHeads, headDim: headDim, heads: heads, capacity: capacity)
        let child = KVCache(blocks: blocks, kvHeads: kvHeads, headDim: headDim, heads: heads, capacity: n + more)
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
