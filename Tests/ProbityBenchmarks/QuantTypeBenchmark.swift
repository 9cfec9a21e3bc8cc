// Batch-1 product throughput of every quant type's kernel on one 2048×1536 matrix (fits in L2/L3
// on the development machine), one thread, best of repeated runs: the kernels' own speed, not the
// memory's. Prints GB/s of weight bytes; docs/KERNELS.md has the numbers.
//
//   swift test -c release --filter QuantTypeBenchmark
import Foundation
import Testing
import ProbityTensor

@Suite struct QuantTypeBenchmark {
    static let types: [GGMLType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K,
                                    .iq4_NL, .iq4_XS, .f16, .bf16]

    @Test func batchOneThroughput() throws {
        let rows = 2048, cols = 1536
        let pool = ThreadPool(threads: 1)
        var rng = SplitMix64(seed: 9)
        let x = (0..<cols).map { _ in Float(rng.nextUnit() * 2 - 1) }
        var out = [Float](repeating: 0, count: rows)
        let clock = ContinuousClock()
        for type in Self.types {
            let bytes = try #require(type.byteCount(elements: rows * cols))
            // Every byte below 0x3C, so every half (scales, F16 weights) is finite and below 1.
            let data = (0..<bytes).map { _ in UInt8(rng.next() % 0x3C) }
            let gbps = try data.withUnsafeBytes { raw -> Double in
                let m = try QuantizedMatrix(type: type, rows: rows, cols: cols, data: try #require(raw.baseAddress))
                var best = Double.infinity
                for _ in 0..<200 {
                    let start = clock.now
                    m.multiply(x, batch: 1, into: &out, pool: pool)
                    let d = start.duration(to: clock.now)
                    best = min(best, Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
                }
                return Double(bytes) / best / 1e9
            }
            #expect(gbps.isFinite && gbps > 0)
            print("quant benchmark \(type.name) \(rows)x\(cols) batch 1, 1 thread: \(String(format: "%.1f", gbps)) GB/s")
        }
    }
}
