// The gated activations' exponential and the activations themselves: against float64, the same
// bits at every instruction set level, and the edges (overflow, underflow, infinities, NaN).
import CKernels
import Foundation
import Testing
@testable import ProbityTensor

@Suite struct ActivationKernelTests {
    /// |got − want| in units of the float spacing at `want`.
    func ulps(_ got: Float, _ want: Double) -> Double {
        let spacing = Double(Float(want).ulp)
        return abs(Double(got) - want) / max(spacing, Double(Float.leastNonzeroMagnitude))
    }

    /// Every 251st float of the range with normal results, both signs: within 1.06 ulp of exp in
    /// float64 (1.059 is the worst over all 2.2·10⁹ floats of the range, measured once), and the
    /// same bits at every level.
    @Test func exponentialWithinOneUlpAtEveryLevel() {
        var xs: [Float] = []
        for start: UInt32 in [0x0000_0000, 0x8000_0000] {
            var bits = start
            while true {
                let x = Float(bitPattern: bits)
                guard x >= -87.3, x <= 88.37 else { break }
                xs.append(x)
                bits += 251
            }
        }
        #expect(xs.count > 8_000_000)
        var reference = [Float](repeating: 0, count: xs.count)
        pk_exp_f32(Int32(PK_ISA_GENERIC), xs, &reference, xs.count)
        var worst = 0.0, worstX: Float = 0
        for (x, e) in zip(xs, reference) {
            let u = ulps(e, Foundation.exp(Double(x)))
            if u > worst { (worst, worstX) = (u, x) }
        }
        #expect(worst <= 1.06, "worst \(worst) ulp at x = \(worstX)")
        for isa in Dequantize.isaLevels {
            var out = [Float](repeating: 0, count: xs.count)
            pk_exp_f32(isa, xs, &out, xs.count)
            let differ = (0..<xs.count).first { out[$0].bitPattern != reference[$0].bitPattern }
            #expect(differ == nil, "isa \(isa): x = \(differ.map { xs[$0] } ?? 0)")
        }
    }

    @Test func exponentialEdges() {
        let xs: [Float] = [.nan, .infinity, -.infinity, 88.37, 88.38, 89, -87.33, -87.35, -200, 0, -0.0, 1]
        for isa in Dequantize.isaLevels {
            var e = [Float](repeating: 7, count: xs.count)
            pk_exp_f32(isa, xs, &e, xs.count)
            #expect(e[0].isNaN && e[1] == .infinity && e[2] == 0, "isa \(isa)")
            #expect(e[3].isFinite && ulps(e[3], Foundation.exp(Double(Float(88.37)))) <= 1.06, "isa \(isa)")
            #expect(e[4] == .infinity && e[5] == .infinity, "isa \(isa): above 88.37 the result is +inf")
            #expect(e[6] > 0 && e[7] == 0 && e[8] == 0, "isa \(isa): below −87.34 the result is 0")
            #expect(e[9] == 1 && e[10] == 1 && ulps(e[11], M_E) <= 1.06, "isa \(isa)")
        }
    }

    /// SiLU and GELU over ±30 in steps of 2⁻¹⁴ (983,040 inputs, every length's tail): within a few
    /// float roundings of float64 where the result is of ordinary size, and the same bits at every
    /// level. GELU's negative tail, which the tanh form rounded to 0 below g ≈ −4.5, keeps its
    /// digits to 1e-5 (its argument −2u, rounded to a float, is the limit there).
    @Test func activationsAgainstFloat64AtEveryLevel() {
        let n = 60 << 14
        let g = (0..<n).map { Float(-30) + Float($0) / Float(1 << 14) }
        let up = (0..<n).map { i in Float(1 + (i % 7)) / 4 }
        let siluWant = Vec.Reference.siluMul(g, up), geluWant = Vec.Reference.geluTanhMul(g, up)
        var silu0 = g, gelu0 = g
        pk_silu_mul(Int32(PK_ISA_GENERIC), &silu0, up, n)
        pk_gelu_tanh_mul(Int32(PK_ISA_GENERIC), &gelu0, up, n)
        func relative(_ got: Float, _ want: Double) -> Double { abs(Double(got) - want) / abs(want) }
        let siluWorst = (0..<n).filter { siluWant[$0] != 0 }.map { relative(silu0[$0], siluWant[$0]) }.max() ?? 0
        #expect(siluWorst <= 4e-7, "silu: worst relative error \(siluWorst)")
        let ordinary = (0..<n).filter { abs(g[$0]) <= 4 && geluWant[$0] != 0 }
        let geluWorst = ordinary.map { relative(gelu0[$0], geluWant[$0]) }.max() ?? 0
        #expect(geluWorst <= 2e-6, "gelu, |g| ≤ 4: worst relative error \(geluWorst)")
        let tail = (0..<n).filter { g[$0] < -4 && geluWant[$0] != 0 && abs(geluWant[$0]) > 1e-30 }
        #expect(tail.count > 10_000 && tail.allSatisfy { relative(gelu0[$0], geluWant[$0]) <= 1e-5 })
        for isa in Dequantize.isaLevels {
            for length in [n, 1, 15, 17, 33] {
                var silu = Array(g.prefix(length)), gelu = Array(g.prefix(length))
                pk_silu_mul(isa, &silu, up, length)
                pk_gelu_tanh_mul(isa, &gelu, up, length)
                #expect(silu.map(\.bitPattern) == silu0.prefix(length).map(\.bitPattern), "silu isa \(isa) n \(length)")
                #expect(gelu.map(\.bitPattern) == gelu0.prefix(length).map(\.bitPattern), "gelu isa \(isa) n \(length)")
            }
        }
    }

    @Test func activationEdges() {
        let g: [Float] = [.infinity, -.infinity, .nan, 0, -0.0, 1000, -1000]
        let one = [Float](repeating: 1, count: g.count)
        for isa in Dequantize.isaLevels {
            var silu = g, gelu = g
            pk_silu_mul(isa, &silu, one, g.count)
            pk_gelu_tanh_mul(isa, &gelu, one, g.count)
            // +inf passes; −inf·0 is NaN, as in the formulas; NaN stays NaN; large negatives give −0.
            #expect(silu[0] == .infinity && silu[1].isNaN && silu[2].isNaN, "isa \(isa)")
            #expect(gelu[0] == .infinity && gelu[1].isNaN && gelu[2].isNaN, "isa \(isa)")
            #expect(silu[3] == 0 && silu[4] == 0 && gelu[3] == 0 && gelu[4] == 0, "isa \(isa)")
            #expect(silu[5] == 1000 && gelu[5] == 1000 && silu[6] == 0 && gelu[6] == 0, "isa \(isa)")
        }
    }

    /// The pool's pieces give each element the bits of one serial call.
    @Test func piecesAcrossThePoolKeepTheBits() {
        let pool = ThreadPool(threads: 3)
        var rng = SplitMix64(seed: 21)
        for n in [100, 4096, 10_007, 65_536] {
            let g = (0..<n).map { _ in Float.random(in: -12...12, using: &rng) }
            let up = (0..<n).map { _ in Float.random(in: -2...2, using: &rng) }
            var serialSilu = g, serialGelu = g, pooledSilu = g, pooledGelu = g
            Vec.siluMul(&serialSilu, up, n)
            Vec.geluTanhMul(&serialGelu, up, n)
            pooledSilu.withUnsafeMutableBufferPointer { Vec.siluMul($0.baseAddress!, up, n, pool: pool) }
            pooledGelu.withUnsafeMutableBufferPointer { Vec.geluTanhMul($0.baseAddress!, up, n, pool: pool) }
            #expect(pooledSilu.map(\.bitPattern) == serialSilu.map(\.bitPattern), "n \(n)")
            #expect(pooledGelu.map(\.bitPattern) == serialGelu.map(\.bitPattern), "n \(n)")
        }
    }
}
