// LowRankUpdate (a LoRA adapter's B·(A·x)) against a plain float64 product written here.

import Testing
@testable import ProbityTensor

@Suite struct LowRankUpdateTests {
    /// out = base + scale · B·A·x for each row, in float64 from the same float32 inputs.
    static func reference(_ u: LowRankUpdate, x: [Float], base: [Float], batch: Int) -> [Double] {
        var out = base.map(Double.init)
        for i in 0..<batch {
            var t = [Double](repeating: 0, count: u.rank)
            for r in 0..<u.rank {
                for c in 0..<u.inputs { t[r] += Double(u.a[r * u.inputs + c]) * Double(x[i * u.inputs + c]) }
            }
            for o in 0..<u.outputs {
                var s = 0.0
                for r in 0..<u.rank { s += Double(u.b[o * u.rank + r]) * t[r] }
                out[i * u.outputs + o] += Double(u.scale) * s
            }
        }
        return out
    }

    /// float32 products of length ≤ 600 sums: within 1e-5 relative L2 of float64.
    @Test(arguments: [(1, 8, 64, 48), (3, 4, 576, 192), (17, 16, 100, 1536), (64, 1, 7, 5)])
    func matchesFloat64(batch: Int, rank: Int, inputs: Int, outputs: Int) throws {
        var rng = Xoshiro256StarStar(seed: UInt64(batch * 1000 + rank))
        func random(_ n: Int) -> [Float] { (0..<n).map { _ in Float(rng.nextUnitDouble() * 2 - 1) } }
        let u = try LowRankUpdate(a: random(rank * inputs), b: random(outputs * rank), rank: rank,
                                  inputs: inputs, outputs: outputs, scale: 1.75)
        let x = random(batch * inputs), base = random(batch * outputs)
        var out = base
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in u.apply(xp.baseAddress!, batch: batch, into: op.baseAddress!) }
        }
        let ref = Self.reference(u, x: x, base: base, batch: batch)
        var num = 0.0, den = 0.0, changed = 0.0
        for i in ref.indices {
            num += (Double(out[i]) - ref[i]) * (Double(out[i]) - ref[i])
            den += ref[i] * ref[i]
            changed += (ref[i] - Double(base[i])) * (ref[i] - Double(base[i]))
        }
        let rel = (num / den).squareRoot()
        #expect(rel <= 1e-5, "rel L2 \(rel); first values \(out.prefix(3)) vs \(ref.prefix(3))")
        #expect((changed / den).squareRoot() > 0.1, "the update must move the output for the test to mean anything")
    }

    @Test func zeroScaleLeavesTheOutputBitForBit() throws {
        var rng = Xoshiro256StarStar(seed: 5)
        func random(_ n: Int) -> [Float] { (0..<n).map { _ in Float(rng.nextUnitDouble() * 2 - 1) } }
        let u = try LowRankUpdate(a: random(8 * 32), b: random(24 * 8), rank: 8, inputs: 32, outputs: 24, scale: 0)
        let x = random(5 * 32), base = random(5 * 24)
        var out = base
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in u.apply(xp.baseAddress!, batch: 5, into: op.baseAddress!) }
        }
        #expect(out.map(\.bitPattern) == base.map(\.bitPattern))
    }

    @Test func refusesFactorsThatDoNotMatchTheShape() {
        #expect(throws: TensorError.self) {
            try LowRankUpdate(a: [1, 2, 3], b: [1, 2], rank: 2, inputs: 2, outputs: 1, scale: 1)
        }
    }
}
