// Actions at a strength (Action+Strength.swift): each edit multiplied by s, x' = x + s·(A(x) − x),
// checked per action on small vectors against the formula written out by hand; s = 0 changes no bit.

import Foundation
import Testing
@testable import ProbityFeatures

@Suite struct ActionStrengthTests {
    let v: [Float] = [3, 0, 4, 0]              // ‖v‖ = 5, u = (0.6, 0, 0.8, 0)
    let x0: [Float] = [1, 2, -2, 0.5]          // x·u = 0.6 − 1.6 = −1

    func applied(_ action: any Action, to x: [Float]) -> [Float] {
        var y = x
        y.withUnsafeMutableBufferPointer { b in
            if let p = b.baseAddress { action.apply(along: v, to: p, width: b.count) }
        }
        return y
    }

    func close(_ a: [Float], _ b: [Float], _ tolerance: Float = 1e-5) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance }
    }

    @Test func strengthOneIsTheActionItself() {
        let clamp = ClampAction.clamp(7).atStrength(1)
        #expect(clamp is ClampAction && clamp.edited(2) == 7)
        #expect((AddAction.add(-2).atStrength(1) as? AddAction)?.alpha == -2)
    }

    @Test func addScalesAlpha() throws {
        let a = try #require(AddAction.add(-2).atStrength(2.5) as? AddAction)
        #expect(a.alpha == -5)
        let expected: [Float] = [-14, 2, -22, 0.5]
        #expect(applied(a, to: x0) == expected)
    }

    /// Value edits move the feature s times as far as the action would: f' = f + s·(A(f) − f).
    @Test func valueEditsMoveSTimesAsFar() {
        #expect(ClampAction.clamp(10).atStrength(0.5).edited(2) == 6)       // 2 + 0.5·(10 − 2)
        #expect(ClampAction.clamp(10).atStrength(2).edited(2) == 18)
        #expect(ScaleAction.scale(0.25).atStrength(2).edited(8) == -4)      // 8 + 2·(2 − 8)
        #expect(AblateAction.ablate.atStrength(0.5).edited(8) == 4)
        #expect(CapAction.cap(1).atStrength(0.5).edited(3) == 2)            // 3 + 0.5·(1 − 3)
        #expect(CapAction.cap(5).atStrength(4).edited(3) == 3)              // under the cap: no edit
        // On a direction the projection p = −1 moves the same way: clamp to 4 at 0.5 → p' = 1.5.
        let y = applied(ClampAction.clamp(4).atStrength(0.5), to: x0)
        let expected: [Float] = [2.5, 2, 0, 0.5]     // x + 2.5·u
        #expect(close(y, expected))
    }

    /// project_out at s removes s times the component: s = 0.5 halves it, s = 2 reflects it.
    @Test func projectOutRemovesSTimesTheComponent() {
        let half = applied(ProjectOutAction.projectOut.atStrength(0.5), to: x0)
        let halfExpected: [Float] = [1.3, 2, -1.6, 0.5]            // x + 0.5·u (x·u = −1)
        #expect(close(half, halfExpected))
        let reflected = applied(ProjectOutAction.projectOut.atStrength(2), to: x0)
        let reflectedExpected: [Float] = [2.2, 2, -0.4, 0.5]       // x + 2·u
        #expect(close(reflected, reflectedExpected))
    }

    @Test func strengthZeroChangesNoBit() {
        let actions: [any Action] = [AddAction.add(-3), ProjectOutAction.projectOut, ClampAction.clamp(9),
                                     ScaleAction.scale(4), AblateAction.ablate, CapAction.cap(-5)]
        for a in actions {
            let y = applied(a.atStrength(0), to: x0)
            #expect(y.map(\.bitPattern) == x0.map(\.bitPattern), "\(a.description)")
            if let f = a.atStrength(0).edited(2.5) { #expect(f == 2.5) }
            #expect(a.atStrength(0).noOpReason != nil)
        }
    }

    @Test func describesItsStrength() {
        let a = ProjectOutAction.projectOut.atStrength(0.5)
        #expect(a.description == "project out the direction, at strength 0.5")
        #expect(a.values == [.absolute(0.5)])
    }
}
