// Decode's several-sequence products (multiplyVectors) hold every vector's result to the bits of
// the single-vector product, over every type, instruction set level, vector count (each remainder
// of the 4-vector register tile), strides and row ranges; the single-vector product itself is held
// to the float64 reference in QuantizedMatrixTests.
import Testing
@testable import ProbityTensor

@Suite struct MultiplyVectorsTests {
    static let pool = ThreadPool(threads: 3)

    static func bits(_ v: [Float]) -> [UInt32] { v.map(\.bitPattern) }

    @Test(arguments: QuantizedMatrixTests.types)
    func bitIdenticalToSingleVectors(_ type: GGMLType) throws {
        let shapes = type.blockSize == 256 ? [(3, 256), (37, 768)] : [(1, 32), (13, 96), (70, 576)]
        for (rows, cols) in shapes {
            var rng = SplitMix64(seed: UInt64(rows * 31 + cols))
            let bytes = Reference.randomBlocks(type, elements: rows * cols, rng: &rng)
            for vectors in [1, 2, 3, 4, 5, 6, 7, 8, 9, 33] {
                let ldx = cols + 5, ldo = rows + 3
                let x = (0..<(vectors * ldx)).map { _ in Float.random(in: -1...1, using: &rng) }
                let range = rows > 4 ? 2..<(rows - 1) : 0..<rows
                try bytes.withUnsafeBytes { raw in
                    let m = try QuantizedMatrix(type: type, rows: rows, cols: cols, data: raw.baseAddress!)
                    for isa in Dequantize.isaLevels {
                        var out = [Float](repeating: -7, count: vectors * ldo)
                        m.multiplyVectors(x, vectors: vectors, stride: ldx, rows: range, into: &out, outStride: ldo,
                                          pool: Self.pool, isa: isa)
                        var want = [Float](repeating: -7, count: vectors * ldo)
                        for b in 0..<vectors {
                            var single = [Float](repeating: 0, count: rows)
                            Array(x[(b * ldx)..<(b * ldx + cols)]).withUnsafeBufferPointer { xb in
                                m.multiply(xb.baseAddress!, batch: 1, rows: range, into: &single, pool: Self.pool, isa: isa)
                            }
                            for r in range { want[b * ldo + r] = single[r] }
                        }
                        #expect(Self.bits(out) == Self.bits(want),
                                "\(type) \(rows)×\(cols) \(vectors) vectors rows \(range) isa \(isa)")
                    }
                }
            }
        }
    }

    @Test func groupBitIdenticalToSingleVectors() throws {
        var rng = SplitMix64(seed: 9)
        let cols = 576
        let shapes: [(GGMLType, Int)] = [(.q4_1, 96), (.q8_0, 40), (.q4_1, 40)]
        let blocks = shapes.map { Reference.randomBlocks($0.0, elements: $0.1 * cols, rng: &rng) }
        let vectors = 11
        let x = (0..<(vectors * cols)).map { _ in Float.random(in: -1...1, using: &rng) }
        let matrices = try zip(shapes, blocks).map { shape, bytes in
            try bytes.withUnsafeBytes { raw in
                // The bytes outlive the matrices: `blocks` is alive for the whole test.
                try QuantizedMatrix(type: shape.0, rows: shape.1, cols: cols, data: raw.baseAddress!)
            }
        }
        withExtendedLifetime(blocks) {
            let group = MatrixGroup(matrices, threads: Self.pool.threadCount)
            let outs = shapes.map { UnsafeMutablePointer<Float>.allocate(capacity: vectors * $0.1) }
            defer { outs.forEach { $0.deallocate() } }
            group.multiplyVectors(x, vectors: vectors, into: outs, pool: Self.pool)
            for b in 0..<vectors {
                let singles = shapes.map { UnsafeMutablePointer<Float>.allocate(capacity: $0.1) }
                defer { singles.forEach { $0.deallocate() } }
                Array(x[(b * cols)..<((b + 1) * cols)]).withUnsafeBufferPointer { xb in
                    group.multiply(xb.baseAddress!, into: singles, pool: Self.pool)
                }
                for (i, shape) in shapes.enumerated() {
                    let got = (0..<shape.1).map { outs[i][b * shape.1 + $0].bitPattern }
                    let want = (0..<shape.1).map { singles[i][$0].bitPattern }
                    #expect(got == want, "matrix \(i) vector \(b)")
                }
            }
        }
    }
}
