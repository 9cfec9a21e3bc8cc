// The opt-in 8-bit activation products: the quantization byte for byte against a plain Swift
// version of llama.cpp's rule, and every kernel level against a float64 sum of the exact integer
// block products (only the float sums of scaled blocks may differ, by rounding), on random
// blocks of each type the mode covers, odd block counts and model shapes.
import CKernels
import Testing
@testable import ProbityTensor

@Suite struct Q8ActivationTests {
    static let pool = ThreadPool(threads: 3)
    static let types: [GGMLType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K]

    /// Q4_K block `blk`'s eight sub-block scales d · sc and mins dmin · m (ggml's get_scale_min_k4).
    static func k4Scales(_ bytes: [UInt8], at o: Int) -> (ds: [Float], dm: [Float]) {
        func half(_ at: Int) -> Float { Float(Float16(bitPattern: UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8)) }
        let q = Array(bytes[(o + 4)..<(o + 16)]).map(Int.init)
        var ds: [Float] = [], dm: [Float] = []
        for j in 0..<8 {
            let sc = j < 4 ? q[j] & 63 : (q[j + 4] & 15) | ((q[j - 4] >> 6) << 4)
            let m = j < 4 ? q[j + 4] & 63 : (q[j + 4] >> 4) | ((q[j] >> 6) << 4)
            ds.append(half(o) * Float(sc))
            dm.append(half(o + 2) * Float(m))
        }
        return (ds, dm)
    }

    /// llama.cpp's rule in plain Swift: d = max|x| / 127, q = round(x / d) with ties away from zero.
    static func quantize(_ x: [Float]) -> (q: [Int8], d: [Float]) {
        var q: [Int8] = [], d: [Float] = []
        for b in 0..<(x.count / 32) {
            let block = x[(b * 32)..<(b * 32 + 32)]
            let amax = block.map { abs($0) }.max() ?? 0
            let db = amax / 127, id: Float = db != 0 ? 1 / db : 0
            q += block.map { Int8(($0 * id).rounded(.toNearestOrAwayFromZero)) }
            d.append(db)
        }
        return (q, d)
    }

    @Test func quantizationIsLlamaCppsRuleByteForByte() {
        var rng = SplitMix64(seed: 7)
        let cols = 1536
        var x = (0..<cols).map { _ in Float.random(in: -3...3, using: &rng) }
        for i in 0..<32 { x[32 + i] = 0 }                  // a zero block: scale 0, every q 0
        x[64] = 127; x[65] = 0.5; x[66] = -0.5; x[67] = 2.5  // scale 1: exact halves round away from zero
        let vectors = Q8Vectors(maxCols: cols)
        let p = vectors.quantize(x, cols: cols)
        let (q, d) = Self.quantize(x)
        let nb = cols / 32
        let qs = Array(UnsafeBufferPointer(start: p.assumingMemoryBound(to: Int8.self), count: cols))
        let scales = Array(UnsafeBufferPointer(start: (p + cols).assumingMemoryBound(to: Float.self), count: nb))
        let sums = Array(UnsafeBufferPointer(start: (p + cols + 4 * nb).assumingMemoryBound(to: Float.self), count: nb))
        let c8 = Array(UnsafeBufferPointer(start: (p + cols + 8 * nb).assumingMemoryBound(to: Int32.self), count: 8 * nb))
        let c128 = Array(UnsafeBufferPointer(start: (p + cols + 40 * nb).assumingMemoryBound(to: Int32.self),
                                             count: 8 * nb))
        #expect(qs == q)
        #expect(scales.map(\.bitPattern) == d.map(\.bitPattern))
        #expect(d[2] == 1 && q[64...67] == [127, 1, -1, 3])
        #expect(d[1] == 0 && q[32..<64].allSatisfy { $0 == 0 })
        for b in 0..<nb {
            let group = (0..<8).map { g in (0..<4).reduce(Int32(0)) { $0 + Int32(q[b * 32 + 4 * g + $1]) } }
            #expect(c8[(b * 8)..<(b * 8 + 8)].elementsEqual(group.map { -8 * $0 }))
            #expect(c128[(b * 8)..<(b * 8 + 8)].elementsEqual(group.map { -128 * $0 }))
            #expect(sums[b].bitPattern == (d[b] * Float(group.reduce(0, +))).bitPattern)
        }
        let d8 = Array(UnsafeBufferPointer(start: (p + cols + 72 * nb).assumingMemoryBound(to: Float.self), count: 8 * nb))
        #expect(d8.map(\.bitPattern) == d.flatMap { Array(repeating: $0.bitPattern, count: 8) })
        #expect(pk_q8_bytes(cols) == cols + 8 * nb + 96 * nb)
    }

    /// An infinite input gives its block an infinite scale and every product with it NaN (as the
    /// float path gives non-finite logits); a NaN input quantizes to 0. Neither traps.
    @Test func nonFiniteInputsQuantizeWithoutTrapping() throws {
        var x = [Float](repeating: 0.5, count: 64)
        x[3] = .infinity
        x[40] = .nan
        let vectors = Q8Vectors(maxCols: 64)
        let p = vectors.quantize(x, cols: 64)
        let qs = Array(UnsafeBufferPointer(start: p.assumingMemoryBound(to: Int8.self), count: 64))
        let d = Array(UnsafeBufferPointer(start: (p + 64).assumingMemoryBound(to: Float.self), count: 2))
        #expect(d[0] == .infinity && qs[0..<32].allSatisfy { $0 == 0 })
        #expect(d[1] == 0.5 / 127 && qs[40] == 0 && qs[32] == 127)
        var rng = SplitMix64(seed: 3)
        let bytes = Reference.randomBlocks(.q8_0, elements: 64, rng: &rng)
        try bytes.withUnsafeBytes { raw in
            let m = try QuantizedMatrix(type: .q8_0, rows: 1, cols: 64, data: raw.baseAddress!)
            for isa in Dequantize.isaLevels {
                var out: [Float] = [0]
                m.multiply(q8: p, into: &out, pool: Self.pool, isa: isa)
                #expect(out[0].isNaN, "isa \(isa): \(out[0])")
            }
        }
    }

    /// Rows × cols of `type` times one random vector at every level: each output within float32
    /// rounding (1e-5 of Σ|terms|) of the float64 sum over blocks of d_w · d_x · (integer dot)
    /// (+ Q4_1's min · d_x · Σ q), and a whole matrix's within 2e-2 (relative L2) of the exact product.
    static func run(_ type: GGMLType, rows: Int, cols: Int, seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let bytes = Reference.randomBlocks(type, elements: rows * cols, rng: &rng)
        let w = Reference.dequantize(type, bytes)
        let x = (0..<cols).map { _ in Float.random(in: -1...1, using: &rng) }
        let (q, d) = Self.quantize(x)
        let nb = cols / 32
        var want = [Double](repeating: 0, count: rows), scale = want
        for r in 0..<rows {
            for b in 0..<nb {
                // The block's integers straight from its bytes (Q4_0's nibbles less 8; Q4_K's sub-block
                // b % 8 of weight block b / 8, with its own scale and min).
                let o = type == .q4_K ? (r * (nb / 8) + b / 8) * 144 : (r * nb + b) * type.bytesPerBlock
                func half(_ at: Int) -> Double { Double(Float16(bitPattern: UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8)) }
                let k4 = type == .q4_K ? Self.k4Scales(bytes, at: o) : nil
                let dw = k4.map { Double($0.ds[b % 8]) } ?? half(o)
                let m = k4.map { -Double($0.dm[b % 8]) } ?? (type == .q4_1 || type == .q5_1 ? half(o + 2) : 0)
                var sumi = 0.0, sumq = 0.0
                for j in 0..<32 {
                    let n: Int
                    switch type {
                    case .q8_0: n = Int(Int8(bitPattern: bytes[o + 2 + j]))
                    case .q4_K: n = Int(bytes[o + 16 + 32 * (b % 8 / 2) + j] >> (4 * UInt8(b % 2))) & 15
                    case .q5_0, .q5_1:
                        let end = o + type.bytesPerBlock
                        let qh = (0..<4).reduce(0) { $0 | Int(bytes[end - 20 + $1]) << (8 * $1) }
                        let byte = Int(bytes[end - 16 + j % 16])
                        n = ((j < 16 ? byte & 15 : byte >> 4) | ((qh >> j) & 1) << 4) - (type == .q5_0 ? 16 : 0)
                    default:
                        let byte = Int(bytes[o + (type == .q4_1 ? 4 : 2) + j % 16])
                        n = (j < 16 ? byte & 15 : byte >> 4) - (type == .q4_0 ? 8 : 0)
                    }
                    sumi += Double(n) * Double(q[b * 32 + j])
                    sumq += Double(q[b * 32 + j])
                }
                let term = dw * Double(d[b]) * sumi + m * Double(d[b]) * sumq
                want[r] += term
                scale[r] += abs(dw * Double(d[b]) * sumi) + abs(m * Double(d[b]) * sumq)
            }
        }
        let exact = Reference.multiply(w, rows: rows, cols: cols, x, batch: 1)
        try bytes.withUnsafeBytes { raw in
            let matrix = try QuantizedMatrix(type: type, rows: rows, cols: cols, data: raw.baseAddress!)
            #expect(matrix.takesQ8)
            let vectors = Q8Vectors(maxCols: cols)
            let p = vectors.quantize(x, cols: cols)
            for isa in Dequantize.isaLevels {
                var out = [Float](repeating: -7, count: rows)
                matrix.multiply(q8: p, into: &out, pool: pool, isa: isa)
                let label = "\(type) \(rows)×\(cols) isa \(isa) (q8 at \(pk_q8_level(isa)))"
                let bad = (0..<rows).filter { !(abs(Double(out[$0]) - want[$0]) <= 1e-5 * max(scale[$0], 1e-30)) }
                #expect(bad.isEmpty, "\(label): rows \(bad.prefix(5)) e.g. \(bad.first.map { "\(out[$0]) vs \(want[$0])" } ?? "")")
                if rows * cols >= 10_000 {  // one short dot can sit further off; a matrix cannot
                    #expect(relativeL2(out, exact) < 2e-2, "\(label): \(relativeL2(out, exact)) from the exact product")
                }
            }
        }
    }

    static func relativeL2(_ a: [Float], _ b: [Double]) -> Double {
        var e = 0.0, n = 0.0
        for i in b.indices { e += (Double(a[i]) - b[i]) * (Double(a[i]) - b[i]); n += b[i] * b[i] }
        return (e / max(n, .leastNormalMagnitude)).squareRoot()
    }

    @Test(arguments: types)
    func everyLevelSumsTheExactBlockProducts(_ type: GGMLType) throws {
        // 1, 2, 3, 5 and 7 blocks: every remainder of the 2- and 4-block steps (Q4_K: whole blocks of 256).
        let shapes = type == .q4_K ? [(1, 256), (7, 512), (50, 768), (40, 1536)]
            : [(1, 32), (7, 64), (13, 96), (50, 160), (9, 224), (192, 576), (40, 1536)]
        for (rows, cols) in shapes {
            try Self.run(type, rows: rows, cols: cols, seed: UInt64(rows * 31 + cols))
        }
    }

    /// Several vectors at once (decode of a batch): each result has the bits of its own single-vector
    /// product, at every level, for every remainder of the 4-vector groups and odd block counts.
    @Test(arguments: types)
    func severalVectorsHaveTheBitsOfOne(_ type: GGMLType) throws {
        for (rows, cols) in type == .q4_K ? [(13, 256), (20, 768)] : [(13, 96), (20, 160), (64, 576)] {
            var rng = SplitMix64(seed: UInt64(rows + cols))
            let bytes = Reference.randomBlocks(type, elements: rows * cols, rng: &rng)
            let batch = 9
            let x = (0..<(batch * cols)).map { _ in Float.random(in: -1...1, using: &rng) }
            let vectors = Q8Vectors(maxCols: cols, slots: batch)
            x.withUnsafeBufferPointer { vectors.quantize($0.baseAddress!, vectors: batch, stride: cols, cols: cols) }
            try bytes.withUnsafeBytes { raw in
                let m = try QuantizedMatrix(type: type, rows: rows, cols: cols, data: raw.baseAddress!)
                for isa in Dequantize.isaLevels {
                    for n in 1...batch {
                        // Rows 3..<rows only: the output keeps its row index, rows outside stay untouched.
                        var many = [Float](repeating: -7, count: n * rows)
                        pk_gemv_q8_multi(isa, type.rawValue, m.data, m.rowBytes, 3, rows, cols, vectors.slot(0),
                                         vectors.stride, n, &many, rows)
                        for s in 0..<n {
                            var one = [Float](repeating: -7, count: rows)
                            pk_gemv_q8(isa, type.rawValue, m.data, m.rowBytes, 0, rows, cols, vectors.slot(s), &one)
                            let got = Array(many[(s * rows)..<(s * rows + rows)])
                            #expect(got[..<3].allSatisfy { $0 == -7 })
                            #expect(got[3...].map(\.bitPattern) == one[3...].map(\.bitPattern),
                                    "\(type) \(rows)×\(cols) isa \(isa) batch \(n) vector \(s)")
                        }
                    }
                }
            }
        }
    }

    @Test func otherTypesDoNotTakeEightBitInputs() {
        for type in [GGMLType.f32, .f16, .bf16, .q5_K, .q6_K, .q2_K, .q3_K, .iq4_NL, .iq4_XS] {
            #expect(pk_q8_supported(type.rawValue) == 0, "\(type)")
            #expect(!ActivationPrecision.q8.quantizes(type))
        }
        #expect(Self.types.allSatisfy { ActivationPrecision.q8.quantizes($0) && !ActivationPrecision.f32.quantizes($0) })
    }
}
