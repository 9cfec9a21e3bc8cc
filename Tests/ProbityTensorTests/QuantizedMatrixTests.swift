// Quantized matrix products against float64 products of the reference dequantization, over every
// supported type, odd and model shapes, batch sizes on both sides of the sgemm switch, and every
// instruction set level.
import Testing
@testable import ProbityTensor

@Suite struct QuantizedMatrixTests {
    static let pool = ThreadPool(threads: 3)  // odd, so chunks never split evenly

    /// Relative L2 error of `got` against `want`, and per element the error in units of
    /// Σ|w·x| (the scale float32 rounding error is proportional to); prints the first mismatches.
    static func check(
        _ got: [Float], _ want: [Double], scale: [Double], tolerance: Double = 1e-5, _ label: String
    ) {
        var errorSquares = 0.0, normSquares = 0.0
        var mismatches: [String] = []
        for i in 0..<want.count {
            let e = Double(got[i]) - want[i]
            errorSquares += e * e
            normSquares += want[i] * want[i]
            if !(abs(e) <= tolerance * scale[i]) && mismatches.count < 5 {
                mismatches.append("[\(i)] \(got[i]) vs \(want[i])")
            }
        }
        let relative = (errorSquares / max(normSquares, .leastNormalMagnitude)).squareRoot()
        #expect(relative <= tolerance, "\(label): relative L2 \(relative)")
        #expect(mismatches.isEmpty, "\(label): first mismatches \(mismatches)")
    }

    static func run(
        _ type: GGMLType, rows: Int, cols: Int, batch: Int, rowRange: Range<Int>? = nil, seed: UInt64
    ) throws {
        var rng = SplitMix64(seed: seed)
        let bytes = Reference.randomBlocks(type, elements: rows * cols, rng: &rng)
        let w = Reference.dequantize(type, bytes)
        let x = (0..<(batch * cols)).map { _ in Float.random(in: -1...1, using: &rng) }
        let range = rowRange ?? 0..<rows
        var want = Reference.multiply(w, rows: rows, cols: cols, x, batch: batch)
        var scale = [Double](repeating: 0, count: batch * rows)
        for b in 0..<batch {
            for r in 0..<rows {
                var s = 0.0
                for c in 0..<cols { s += abs(Double(w[r * cols + c]) * Double(x[b * cols + c])) }
                scale[b * rows + r] = s
                if !range.contains(r) { want[b * rows + r] = -7 }  // rows outside the range stay untouched
            }
        }
        try bytes.withUnsafeBytes { raw in
            let m = try QuantizedMatrix(type: type, rows: rows, cols: cols, data: raw.baseAddress!)
            #expect(m.rowBytes == cols / type.blockSize * type.bytesPerBlock)
            for isa in Dequantize.isaLevels {
                var out = [Float](repeating: -7, count: batch * rows)
                m.multiply(x, batch: batch, rows: range, into: &out, pool: pool, isa: isa)
                check(out, want, scale: scale, "\(type) \(rows)×\(cols) batch \(batch) rows \(range) isa \(isa)")
            }
            if rowRange == nil {
                var out = [Float](repeating: -7, count: batch * rows)
                m.multiply(x, batch: batch, into: &out, pool: pool)
                check(out, want, scale: scale, "\(type) \(rows)×\(cols) batch \(batch) public")
            }
        }
    }

    static let types: [GGMLType] = [.f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K,
                                    .q2_K, .q3_K, .iq4_NL, .iq4_XS]

    @Test(arguments: types)
    func smallShapesAllBatches(_ type: GGMLType) throws {
        let shapes = type.blockSize == 256 ? [(1, 256), (7, 512), (50, 768)] : [(1, 32), (7, 64), (13, 96), (50, 160)]
        for (rows, cols) in shapes {
            for batch in [1, 2, 7, 16, 17, 19, 21, 64] {  // 17, 19, 21: every remainder of the 6-row tile
                try Self.run(type, rows: rows, cols: cols, batch: batch, seed: UInt64(rows * 1000 + batch))
            }
        }
    }

    @Test(arguments: [GGMLType.q4_1, .q8_0, .q5_0, .f32, .f16, .bf16, .q4_K, .q6_K, .q2_K, .q3_K, .iq4_NL, .iq4_XS])
    func modelShapes(_ type: GGMLType) throws {
        let d = type.blockSize == 256 ? 768 : 576  // K-quant rows must hold whole 256-element blocks
        try Self.run(type, rows: 192, cols: d, batch: 1, seed: 1)
        try Self.run(type, rows: 577, cols: 1536, batch: 1, seed: 2)
        try Self.run(type, rows: 65, cols: d, batch: 512, seed: 3)
        if type.blockSize == 32 { try Self.run(type, rows: 200, cols: 64, batch: 512, seed: 4) }
    }

    @Test func rowRangeComputesOnlyThoseRows() throws {
        try Self.run(.q8_0, rows: 300, cols: 128, batch: 1, rowRange: 37..<251, seed: 5)
        try Self.run(.q8_0, rows: 300, cols: 128, batch: 3, rowRange: 0..<1, seed: 6)
        try Self.run(.q4_1, rows: 300, cols: 128, batch: 40, rowRange: 100..<300, seed: 7)
    }

    @Test func f16ProductsSeeEveryFiniteHalfExactly() throws {
        // All 65536 halves as a 2048 × 32 matrix (inf and NaN replaced by 0): a one-hot x picks
        // column j, so out[r] must be exactly W[r, j] at every level, subnormals included.
        let halves: [UInt16] = (0...0xFFFF).map { h in h & 0x7C00 == 0x7C00 ? 0 : UInt16(h) }
        let bytes = halves.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
        try bytes.withUnsafeBytes { raw in
            let m = try QuantizedMatrix(type: .f16, rows: 2048, cols: 32, data: raw.baseAddress!)
            for isa in Dequantize.isaLevels {
                var bad: [String] = []
                for j in 0..<32 {
                    var x = [Float](repeating: 0, count: 32)
                    x[j] = 1
                    var out = [Float](repeating: .nan, count: 2048)
                    m.multiply(x, batch: 1, rows: 0..<2048, into: &out, pool: Self.pool, isa: isa)
                    for r in 0..<2048 where out[r] != Reference.half(halves[r * 32 + j]) && bad.count < 5 {
                        bad.append("0x\(String(halves[r * 32 + j], radix: 16)) -> \(out[r])")
                    }
                }
                #expect(bad.isEmpty, "isa \(isa): first mismatches \(bad)")
            }
        }
    }

    @Test func resultsDoNotDependOnTheThreadCount() throws {
        // Audits must not depend on a speed setting: every output element is summed in the same
        // order whichever thread computes it.
        var rng = SplitMix64(seed: 11)
        let (rows, cols) = (300, 576)
        let bytes = Reference.randomBlocks(.q4_1, elements: rows * cols, rng: &rng)
        let x = (0..<(512 * cols)).map { _ in Float.random(in: -1...1, using: &rng) }
        let pools = [ThreadPool(threads: 1), ThreadPool(threads: 2), ThreadPool(threads: 5)]
        try bytes.withUnsafeBytes { raw in
            let m = try QuantizedMatrix(type: .q4_1, rows: rows, cols: cols, data: raw.baseAddress!)
            for batch in [1, 5, 512] {
                let outs = pools.map { pool in
                    var out = [Float](repeating: 0, count: batch * rows)
                    m.multiply(x, batch: batch, into: &out, pool: pool)
                    return out
                }
                #expect(outs.allSatisfy { $0 == outs[0] }, "batch \(batch)")
            }
        }
    }

    @Test(arguments: [GGMLType.q8_0, .q4_K, .q6_K, .f32])
    func batchedRowsDoNotDependOnTheirNeighbours(_ type: GGMLType) throws {
        // A prompt run in one call or split in two (a session forked after its prompt) gives each
        // position the same bits as long as both calls take the batched path: each output element
        // is summed in the same order whatever rows share its panel. 47 rows: a partial 16-row
        // group of the panel's transposition and every tile remainder.
        var rng = SplitMix64(seed: 21)
        let cols = type.blockSize == 256 ? 768 : 576
        let rows = 47
        let bytes = Reference.randomBlocks(type, elements: rows * cols, rng: &rng)
        let batch = 90
        let x = (0..<(batch * cols)).map { _ in Float.random(in: -1...1, using: &rng) }
        try bytes.withUnsafeBytes { raw in
            let m = try QuantizedMatrix(type: type, rows: rows, cols: cols, data: raw.baseAddress!)
            var whole = [Float](repeating: 0, count: batch * rows)
            m.multiply(x, batch: batch, into: &whole, pool: Self.pool)
            for (start, count) in [(0, 16), (16, 74), (37, 23), (60, 30)] where count >= QuantizedMatrix.gemmMinBatch {
                var part = [Float](repeating: 0, count: count * rows)
                Array(x[(start * cols)..<((start + count) * cols)]).withUnsafeBufferPointer { xs in
                    m.multiply(xs.baseAddress!, batch: count, into: &part, pool: Self.pool)
                }
                #expect(part == Array(whole[(start * rows)..<((start + count) * rows)]), "\(type) rows \(start)..<\(start + count)")
            }
        }
    }

    @Test func multiplyEachEqualsSeparateProducts() throws {
        // Decode's fused q/k/v and gate/up dispatch must give the same bits as one call each.
        var rng = SplitMix64(seed: 12)
        let cols = 576
        let shapes: [(GGMLType, Int)] = [(.q4_1, 576), (.q4_1, 192), (.q8_0, 37), (.f32, 1)]
        let blobs = shapes.map { Reference.randomBlocks($0.0, elements: $0.1 * cols, rng: &rng) }
        let x = (0..<cols).map { _ in Float.random(in: -1...1, using: &rng) }
        let pool = ThreadPool(threads: 2)
        // Weights in buffers we own, so the matrices' pointers stay valid for the whole test.
        let storage = blobs.map { blob -> UnsafeMutableRawBufferPointer in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: blob.count, alignment: 64)
            buffer.copyBytes(from: blob)
            return buffer
        }
        defer { storage.forEach { $0.deallocate() } }
        let matrices = try shapes.enumerated().map { i, shape in
            try QuantizedMatrix(type: shape.0, rows: shape.1, cols: cols, data: UnsafeRawPointer(storage[i].baseAddress!))
        }
        let outs = shapes.map { UnsafeMutablePointer<Float>.allocate(capacity: $0.1) }
        defer { outs.forEach { $0.deallocate() } }
        // A group sized for another thread count gives the same bits on this pool.
        for run in 0..<2 {
            if run == 0 {
                QuantizedMatrix.multiplyEach(matrices, x, into: outs, pool: pool)
            } else {
                MatrixGroup(matrices, threads: 5).multiply(x, into: outs, pool: pool)
            }
            for (i, m) in matrices.enumerated() {
                var single = [Float](repeating: 0, count: m.rows)
                m.multiply(x, batch: 1, into: &single, pool: pool)
                #expect(Array(UnsafeBufferPointer(start: outs[i], count: m.rows)) == single, "run \(run) matrix \(i)")
                outs[i].update(repeating: .nan, count: m.rows)
            }
        }
    }

    @Test func dequantizeRowMatchesReference() throws {
        var rng = SplitMix64(seed: 9)
        let bytes = Reference.randomBlocks(.q4_1, elements: 5 * 64, rng: &rng)
        let w = Reference.dequantize(.q4_1, bytes)
        try bytes.withUnsafeBytes { raw in
            let m = try QuantizedMatrix(type: .q4_1, rows: 5, cols: 64, data: raw.baseAddress!)
            var row = [Float](repeating: 0, count: 64)
            m.dequantizeRow(3, into: &row)
            #expect(row == Array(w[192..<256]))
        }
    }

    @Test func emptyRowsGiveZeros() throws {
        let none: [UInt8] = [0]
        try none.withUnsafeBytes { raw in
            let m = try QuantizedMatrix(type: .q4_1, rows: 3, cols: 0, data: raw.baseAddress!)
            for isa in Dequantize.isaLevels {
                for batch in [1, 2, 20] {
                    var out = [Float](repeating: .nan, count: 3 * batch)
                    m.multiply([], batch: batch, rows: 0..<3, into: &out, pool: Self.pool, isa: isa)
                    #expect(out.allSatisfy { $0 == 0 }, "batch \(batch) isa \(isa)")
                }
            }
        }
    }

    @Test func badMatricesAreSpecificErrors() {
        let bytes = [UInt8](repeating: 0, count: 1024)
        bytes.withUnsafeBytes { raw in
            #expect(throws: TensorError.unsupportedType(.iq2_XXS, context: "matrix 2×256 IQ2_XXS")) {
                try QuantizedMatrix(type: .iq2_XXS, rows: 2, cols: 256, data: raw.baseAddress!)
            }
            #expect(throws: TensorError.partialBlock(.q4_1, elements: 48, context: "matrix 2×48 Q4_1")) {
                try QuantizedMatrix(type: .q4_1, rows: 2, cols: 48, data: raw.baseAddress!)
            }
            #expect(throws: TensorError.invalidShape(rows: -1, cols: 32, context: "matrix -1×32 Q8_0")) {
                try QuantizedMatrix(type: .q8_0, rows: -1, cols: 32, data: raw.baseAddress!)
            }
        }
    }
}
