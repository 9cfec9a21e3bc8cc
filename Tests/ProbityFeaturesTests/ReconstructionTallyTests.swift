// The FVU over a set of positions (centred on their mean) against a plain two-pass float64
// computation; joining sets; and why a per-position error that does not centre misleads.

import Foundation
import Testing
import ProbityFeatures
import ProbityTensor

@Suite struct ReconstructionTallyTests {
    /// Two passes in float64: the mean first, then the sums.
    static func reference(_ x: [[Float]], _ xHat: [[Float]]) -> (error: Double, total: Double) {
        let d = x[0].count
        var mean = [Double](repeating: 0, count: d)
        for row in x { for j in 0..<d { mean[j] += Double(row[j]) / Double(x.count) } }
        var error = 0.0, total = 0.0
        for (row, hat) in zip(x, xHat) {
            for j in 0..<d {
                let e = Double(row[j]) - Double(hat[j]), c = Double(row[j]) - mean[j]
                error += e * e
                total += c * c
            }
        }
        return (error, total)
    }

    static func rows(_ n: Int, width: Int, common: Float, seed: UInt64) -> [[Float]] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in (0..<width).map { j in (j == 0 ? common : 0) + Float(rng.nextUnit() * 2 - 1) } }
    }

    static func tally(_ x: [[Float]], _ xHat: [[Float]]) -> ReconstructionTally {
        var t = ReconstructionTally()
        for (a, b) in zip(x, xHat) { a.withUnsafeBufferPointer { p in b.withUnsafeBufferPointer { q in
            t.add(p.baseAddress!, reconstruction: q.baseAddress!, width: a.count)
        } } }
        return t
    }

    @Test func matchesATwoPassComputationAndJoins() throws {
        let x = Self.rows(40, width: 8, common: 3, seed: 1)
        var rng = SplitMix64(seed: 2)
        let xHat = x.map { row in row.map { $0 + Float(rng.nextUnit() - 0.5) } }
        let ref = Self.reference(x, xHat)
        let whole = Self.tally(x, xHat)
        #expect(whole.count == 40)
        #expect(abs(whole.squaredError - ref.error) <= 1e-12 * ref.error)
        #expect(abs(whole.totalVariance - ref.total) <= 1e-12 * ref.total)
        #expect(abs(try #require(whole.fvu) - ref.error / ref.total) <= 1e-12)
        // Two halves joined give the sums of the whole.
        var joined = Self.tally(Array(x[..<13]), Array(xHat[..<13]))
        joined.merge(Self.tally(Array(x[13...]), Array(xHat[13...])))
        #expect(joined.count == 40)
        #expect(abs(joined.totalVariance - ref.total) <= 1e-12 * ref.total)
        #expect(zip(joined.mean, whole.mean).allSatisfy { abs($0 - $1) <= 1e-12 })
        // Joining nothing changes nothing; a single position has no variance, hence no FVU.
        joined.merge(ReconstructionTally())
        #expect(joined.count == 40)
        #expect(Self.tally([x[0]], [xHat[0]]).fvu == nil)
        // A report's sums read back only when they can describe positions.
        #expect(ReconstructionTally(count: 2, squaredError: 1, totalVariance: 2, mean: [0, 0]) != nil)
        #expect(ReconstructionTally(count: 0, squaredError: 0, totalVariance: 0, mean: [0]) == nil)
        #expect(ReconstructionTally(count: 2, squaredError: -1, totalVariance: 2, mean: [0]) == nil)
    }

    /// Positions sharing a large common component, "reconstructed" by that component alone: each
    /// position's relative squared error is about 1e-4, as if the SAE explained 99.99% of it, yet it
    /// explains none of how the positions differ, and the FVU says so (1).
    @Test func aCommonMeanFoolsThePerPositionErrorNotTheFVU() throws {
        let x = Self.rows(200, width: 8, common: 100, seed: 3)
        let mean = (0..<8).map { j in Float(x.map { Double($0[j]) }.reduce(0, +) / Double(x.count)) }
        let xHat = x.map { _ in mean }
        let errors = zip(x, xHat).map { a, b in
            a.withUnsafeBufferPointer { p in b.withUnsafeBufferPointer { q in relativeSquaredError(p.baseAddress!, q.baseAddress!, count: 8) } }
        }
        #expect((errors.max() ?? 1) < 1e-3)
        let fvu = try #require(Self.tally(x, xHat).fvu)
        #expect(abs(fvu - 1) < 1e-6)
    }
}
