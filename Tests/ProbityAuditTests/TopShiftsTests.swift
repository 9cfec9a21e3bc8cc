// The tokens a pass moved most: exact means over rows on handmade distributions, ties to the lower
// id, and nothing listed when the pass equals the baseline.

import Foundation
import ProbityTensor
import Testing
@testable import ProbityAudit

struct TopShiftsTests {
    @Test func meansOrderAndTies() {
        let rows: [(dp: [Double], base: [Float], steered: [Float])] = [
            ([0.1, -0.05, 0, -0.05, 0], [0, 0, 0, 0, 0], [1, -1, 0, 2, 0]),
            ([0.3, -0.1, -0.2, 0, 0], [1, 1, 1, 1, 1], [2, 1, -3, 1, 1]),
        ]
        let s = TopShifts(rows: rows, k: 2)
        #expect(s.raised.map(\.token) == [0])
        #expect(abs((s.raised.first?.probabilityDelta ?? 0) - 0.2) < 1e-15)
        #expect(s.raised.first?.logitDelta == 1)
        // Sums −0.15, −0.2, −0.05: the largest fall first, two kept.
        #expect(s.lowered.map(\.token) == [2, 1])
        #expect(s.lowered.map(\.logitDelta) == [-2, -0.5])
        let tied = TopShifts(rows: [([0.25, 0.25, -0.25, -0.25], [0, 0, 0, 0], [0, 0, 0, 0])], k: 5)
        #expect(tied.raised.map(\.token) == [0, 1] && tied.lowered.map(\.token) == [2, 3])
    }

    @Test func aPassEqualToTheBaselineMovesNothing() {
        let rows: [[Float]] = [[1, 2, 3, 0.5], [0, -1, 4, 2]]
        let pool = ThreadPool(threads: 2)
        let baseline = AuditRunner.distributions(rows, pool: pool)
        let same = AuditRunner.compare(baseline, base: rows, rows, pool: pool)
        #expect(same.shifts == TopShifts() && same.kl == [0, 0] && same.top1 == 0)
        // Raising token 0's logit by 1 at both rows moves probability to it from every other token.
        let up = rows.map { r in [r[0] + 1] + r.dropFirst() }
        let moved = AuditRunner.compare(baseline, base: rows, up, pool: pool)
        #expect(moved.shifts.raised.map(\.token) == [0] && moved.shifts.raised.first?.logitDelta == 1)
        #expect(Set(moved.shifts.lowered.map(\.token)) == [1, 2, 3] && moved.shifts.lowered.allSatisfy { $0.logitDelta == 0 })
        let total = (moved.shifts.raised + moved.shifts.lowered).map(\.probabilityDelta).reduce(0, +)
        #expect(abs(total) < 1e-12, "probability is conserved: \(total)")
    }

    /// A row where the pass has the baseline's bits is skipped, not worked through, and the
    /// comparison is bit for bit what working it through gives: KL 0 there, the other rows' KL as
    /// alone, and shifts equal to those with that row's probability changes written out as zeros.
    @Test func rowsEqualToTheBaselineAreSkippedExactly() {
        let base: [[Float]] = [[1, 2, 3, 0.5], [0, -1, 4, 2], [0.25, 0.5, -2, 1]]
        let pass: [[Float]] = [base[0], [0.5, -1, 4.5, 2], [0.25, 0.75, -2, 1]]
        let pool = ThreadPool(threads: 2)
        let baseline = AuditRunner.distributions(base, pool: pool)
        let all = AuditRunner.compare(baseline, base: base, pass, pool: pool)
        let rest = AuditRunner.compare(Array(baseline.dropFirst()), base: Array(base.dropFirst()), Array(pass.dropFirst()), pool: pool)
        #expect(all.kl.count == 3 && all.kl[0] == 0 && Array(all.kl.dropFirst()) == rest.kl)
        #expect(all.top1 == 0)
        // The same shifts with the first row's changes as explicit zeros (its logits moved nothing).
        func dp(_ j: Int) -> [Double] {
            let lq = AuditRunner.logSoftmax(pass[j])
            return zip(lq, baseline[j].probabilities).map { exp($0) - $1 }
        }
        let written = TopShifts(rows: [([Double](repeating: 0, count: 4), base[0], pass[0]), (dp(1), base[1], pass[1]),
                                       (dp(2), base[2], pass[2])], k: TopShifts.count)
        #expect(all.shifts == written && !written.raised.isEmpty && !written.lowered.isEmpty)
        #expect(AuditRunner.sameBits(base[0], pass[0]) && !AuditRunner.sameBits(base[1], pass[1]))
        #expect(!AuditRunner.sameBits([0], [-0.0]))
    }
}
