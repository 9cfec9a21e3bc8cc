// Vector kernels against their float64 twins on random data of awkward lengths.
import CKernels
import Testing
@testable import ProbityTensor

@Suite struct VecTests {
    static let lengths = [1, 7, 8, 31, 64, 576, 1537]

    func random(_ n: Int, _ rng: inout SplitMix64, in range: ClosedRange<Float> = -2...2) -> [Float] {
        (0..<n).map { _ in Float.random(in: range, using: &rng) }
    }

    func expectClose(_ got: [Float], _ want: [Double], tolerance: Double, _ label: String) {
        let bad = (0..<want.count).filter { !(abs(Double(got[$0]) - want[$0]) <= tolerance * max(1, abs(want[$0]))) }
        #expect(bad.isEmpty, "\(label): first mismatches \(bad.prefix(5).map { (got[$0], want[$0]) })")
    }

    @Test func dot() {
        var rng = SplitMix64(seed: 1)
        for n in Self.lengths {
            let a = random(n, &rng), b = random(n, &rng)
            let want = Vec.Reference.dot(a, b, n)
            let scale = zip(a, b).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
            let got = Vec.dot(a, b, n)
            #expect(abs(Double(got) - want) <= 1e-6 * scale, "n \(n): \(got) vs \(want)")
        }
    }

    @Test func rmsNorm() {
        var rng = SplitMix64(seed: 2)
        for n in Self.lengths {
            let x = random(n, &rng), w = random(n, &rng)
            var out = [Float](repeating: 0, count: n)
            Vec.rmsNorm(x, weight: w, eps: 1e-5, n, into: &out)
            expectClose(out, Vec.Reference.rmsNorm(x, weight: w, eps: 1e-5), tolerance: 1e-6, "n \(n)")
            var inPlace = x
            inPlace.withUnsafeMutableBufferPointer { p in
                Vec.rmsNorm(p.baseAddress!, weight: w, eps: 1e-5, n, into: p.baseAddress!)
            }
            #expect(inPlace == out)
        }
    }

    @Test func siluMul() {
        var rng = SplitMix64(seed: 4)
        for n in Self.lengths {
            let g = random(n, &rng, in: -20...20), u = random(n, &rng)
            var got = g
            Vec.siluMul(&got, u, n)
            expectClose(got, Vec.Reference.siluMul(g, u), tolerance: 1e-6, "n \(n)")
        }
    }

    /// Gemma's gated GELU (tanh form) against float64, with the tails where tanh saturates.
    @Test func geluTanhMul() {
        var rng = SplitMix64(seed: 14)
        for n in Self.lengths {
            let g = random(n, &rng, in: -20...20), u = random(n, &rng)
            var got = g
            Vec.geluTanhMul(&got, u, n)
            expectClose(got, Vec.Reference.geluTanhMul(g, u), tolerance: 1e-6, "n \(n)")
        }
        var one: [Float] = [1, -1, 0]
        Vec.geluTanhMul(&one, [1, 1, 1], 3)
        // gelu_tanh(1) = 0.5·(1 + tanh(√(2/π)·1.044715)) = 0.8411920, gelu_tanh(−1) = −0.1588080.
        #expect(abs(one[0] - 0.8411920) < 1e-6 && abs(one[1] + 0.1588080) < 1e-6 && one[2] == 0)
    }

    @Test func addAxpyScale() {
        var rng = SplitMix64(seed: 5)
        for n in Self.lengths {
            let x = random(n, &rng), y = random(n, &rng)
            var sum = x
            Vec.add(&sum, y, n)
            #expect(sum == zip(x, y).map { $0 + $1 })
            var axpy = y
            Vec.axpy(0.75, x, &axpy, n)
            expectClose(axpy, zip(x, y).map { 0.75 * Double($0) + Double($1) }, tolerance: 1e-6, "axpy n \(n)")
            var scaled = x
            Vec.scale(&scaled, -1.5, n)
            #expect(scaled == x.map { $0 * -1.5 })
        }
    }

    @Test func portableLevelMatchesReference() {
        // The public kernels run at the best level; the portable C must hold to the same twins.
        var rng = SplitMix64(seed: 6)
        for isa in Dequantize.isaLevels {
            for n in Self.lengths {
                let a = random(n, &rng), b = random(n, &rng)
                let scale = zip(a, b).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
                #expect(abs(Double(pk_dot_f32(isa, a, b, n)) - Vec.Reference.dot(a, b, n)) <= 1e-6 * scale)
                var norm = [Float](repeating: 0, count: n)
                pk_rms_norm(isa, a, b, 1e-5, n, &norm)
                expectClose(norm, Vec.Reference.rmsNorm(a, weight: b, eps: 1e-5), tolerance: 1e-6, "rms isa \(isa) n \(n)")
                var silu = a
                pk_silu_mul(isa, &silu, b, n)
                expectClose(silu, Vec.Reference.siluMul(a, b), tolerance: 1e-6, "silu isa \(isa) n \(n)")
                var y = b
                pk_axpy(isa, -0.5, a, &y, n)
                expectClose(y, zip(a, b).map { -0.5 * Double($0) + Double($1) }, tolerance: 1e-6, "axpy isa \(isa) n \(n)")
                var sum = a
                pk_add(isa, &sum, b, n)
                #expect(sum == zip(a, b).map { $0 + $1 })
                var scaled = a
                pk_scale(isa, &scaled, 3, n)
                #expect(scaled == a.map { $0 * 3 })
            }
        }
    }

    @Test func blasSgemmRowMajor() {
        // [[1, 2, 3], [4, 5, 6]] · [[1, 0], [0, 1], [1, 1]] = [[4, 5], [10, 11]]; then with Bᵀ stored.
        let a: [Float] = [1, 2, 3, 4, 5, 6]
        let b: [Float] = [1, 0, 0, 1, 1, 1]
        var c = [Float](repeating: 1, count: 4)
        BLAS.sgemm(m: 2, n: 2, k: 3, a: a, lda: 3, b: b, ldb: 2, beta: 1, c: &c, ldc: 2)
        #expect(c == [5, 6, 11, 12])
        let bt: [Float] = [1, 0, 1, 0, 1, 1]
        BLAS.sgemm(m: 2, n: 2, k: 3, alpha: 2, a: a, lda: 3, b: bt, ldb: 3, transposeB: true, c: &c, ldc: 2)
        #expect(c == [8, 10, 20, 22])
    }
}

@Suite struct TopIndicesTests {
    @Test func picksTheLargestInOrderWithLowerIndexOnTies() {
        let v: [Float] = [1, 5, 3, 5, -2, 4, 0]
        v.withUnsafeBufferPointer { b in
            #expect(Vec.topIndices(b, k: 3) == [1, 3, 5])
            #expect(Vec.topIndices(b, k: 0) == [])
            #expect(Vec.topIndices(b, k: 10) == [1, 3, 5, 2, 0, 6, 4])
        }
    }
}
