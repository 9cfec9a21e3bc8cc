// Interventions attached as hooks, on synthetic activations: the exact write-back x' = x + W_dec·(f' − f)
// that keeps the error term, no-op edits that change nothing, direction edits, triggers, filters and
// the monitor.

import Foundation
import ProbityTensor
import Testing
@testable import ProbityFeatures
@testable import ProbityLM

@Suite struct InterventionTests {
    let info = ModelInfo(architecture: "llama", blockCount: 2, width: 8, vocabularySize: 10, contextLength: 64)
    let point = HookPoint.residPost(1)

    func binding(_ architecture: String = "standard", normalization: String = "none") throws -> (SAEBinding, SAEFixture) {
        var fx = SAEFixture(architecture: architecture, normalization: normalization)
        let dir = try fx.write(to: try scratchDirectory())
        let sae = try SparseAutoencoder.load(directory: dir.path)
        let labels = FeatureLabels([FeatureLabel(id: "3", name: "three", maxActivation: 2.5)])
        return (SAEBinding(name: "fixture", sae: sae, point: point, labels: labels), fx)
    }

    func activations(rows: Int, seed: UInt64 = 7) -> [Float] {
        var rng = SplitMix64(seed)
        return rng.floats(rows * 8).map { $0 * 3 }
    }

    /// Runs one plan on a copy of `x` and returns the edited copy.
    func steer(_ x: [Float], _ interventions: [Intervention], origins: [TokenOrigin]? = nil, start: Int = 0) throws -> [Float] {
        let plan = FeaturePlan()
        for iv in interventions { try plan.add(iv) }
        let hooks = HookSet()
        try plan.attach(to: hooks, model: info)
        var y = x
        try runHooks(hooks, at: point, blocks: 2, values: &y, width: 8, start: start, origins: origins)
        return y
    }

    /// A latent that is active at row 0 of `x`.
    func activeLatent(_ b: SAEBinding, _ x: [Float]) -> (Int, Float) {
        let e = x.withUnsafeBufferPointer { b.sae.encode($0.baseAddress!, count: 1) }
        let top = e.active(0)[0]
        return (top.index, top.activation)
    }

    @Test(arguments: ["standard", "jumprelu", "topk"], ["none", "constant_norm_rescale"])
    func clampToCurrentValueChangesNothing(architecture: String, normalization: String) throws {
        let (b, _) = try binding(architecture, normalization: normalization)
        let x = activations(rows: 4)
        let e = x.withUnsafeBufferPointer { b.sae.encode($0.baseAddress!, count: 4) }
        // Clamp each row's top latent to the value it already has: one intervention per row.
        var ivs: [Intervention] = []
        for r in 0..<4 {
            let top = e.active(r)[0]
            ivs.append(Intervention(.latent(b, top.index), .clamp(top.activation), positions: .range(r..<(r + 1))))
        }
        let y = try steer(x, ivs)
        #expect(relativeError(y, x) <= 1e-5)
    }

    @Test func identityEditsChangeNothing() throws {
        let (b, _) = try binding()
        let x = activations(rows: 3)
        let (i, _) = activeLatent(b, x)
        #expect(try steer(x, [Intervention(.latent(b, i), .scale(1))]) == x)
        #expect(try steer(x, [Intervention(.latent(b, i), .add(0))]) == x)
        let dir = Direction(name: "d", point: point, vector: b.sae.decoderRow(i))
        #expect(try steer(x, [Intervention(.direction(dir), .add(0))]) == x)
        #expect(try steer(x, [Intervention(.latent(b, i), .cap(1e9))]) == x)
    }

    /// Ablating latent i moves x by exactly −f_i·W_dec[i] (divided by the input scale).
    @Test(arguments: ["none", "constant_norm_rescale"])
    func ablateMovesByDecoderRow(normalization: String) throws {
        let (b, _) = try binding(normalization: normalization)
        let x = activations(rows: 1)
        let (i, f) = activeLatent(b, x)
        let scale = x.withUnsafeBufferPointer { b.sae.encode($0.baseAddress!, count: 1) }.scales[0]
        let y = try steer(x, [Intervention(.latent(b, i), .ablate)])
        let row = b.sae.decoderRow(i)
        let expected = (0..<8).map { Double(x[$0]) - Double(f) * Double(row[$0]) / Double(scale) }
        #expect(relativeError(y, expected) <= 1e-6)
        #expect(y != x)
    }

    /// The SAE error x − x̂(f) before an edit equals x' − x̂(f') after it, for every latent action.
    @Test(arguments: ["standard", "jumprelu", "topk"], ["none", "constant_norm_rescale"])
    func errorTermIsPreserved(architecture: String, normalization: String) throws {
        let (b, _) = try binding(architecture, normalization: normalization)
        let x = activations(rows: 1)
        let (i, f) = activeLatent(b, x)
        let e0 = x.withUnsafeBufferPointer { b.sae.encode($0.baseAddress!, count: 1) }
        let actions: [any Action] = [ClampAction.clamp(f * 4 + 1), ScaleAction.scale(-2), AblateAction.ablate, CapAction.cap(f / 2)]
        for action in actions {
            let y = try steer(x, [Intervention(.latent(b, i), action)])
            var fEdited = e0.latents
            fEdited[i] = action.edited(f) ?? f
            let before = zip(x, decode(b.sae, e0.latents, scale: e0.scales[0])).map { $0 - $1 }
            let after = zip(y, decode(b.sae, fEdited, scale: e0.scales[0])).map { $0 - $1 }
            let norm = x.map { Double($0 * $0) }.reduce(0, +).squareRoot()
            let diff = zip(before, after).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
            #expect(diff / norm <= 1e-6, "\(action): error term moved by \(diff)")
            #expect(y != x, "\(action) changed nothing")
        }
    }

    func decode(_ sae: SparseAutoencoder, _ f: [Float], scale: Float) -> [Float] {
        var out = [Float](repeating: 0, count: sae.dIn)
        f.withUnsafeBufferPointer { fp in out.withUnsafeMutableBufferPointer { sae.decode(fp.baseAddress!, scale: scale, into: $0.baseAddress!) } }
        return out
    }

    /// `add α` on a latent adds α·W_dec[i] as is; `project_out` on a latent removes the component
    /// along its decoder row.
    @Test func denseActionsOnLatents() throws {
        let (b, _) = try binding(normalization: "constant_norm_rescale")
        let x = activations(rows: 1)
        let row = b.sae.decoderRow(5)
        let added = try steer(x, [Intervention(.latent(b, 5), .add(2.5))])
        #expect(relativeError(added, (0..<8).map { Double(x[$0]) + 2.5 * Double(row[$0]) }) <= 1e-7)
        let out = try steer(x, [Intervention(.latent(b, 5), .projectOut)])
        let dot = (0..<8).map { Double(out[$0]) * Double(row[$0]) }.reduce(0, +)
        #expect(abs(dot) <= 1e-5)
    }

    @Test func directionActions() throws {
        var rng = SplitMix64(3)
        let v = rng.floats(8)
        let norm = v.map { Double($0 * $0) }.reduce(0, +).squareRoot()
        let u = v.map { Double($0) / norm }
        let dir = Direction(name: "honesty", point: point, vector: v)
        let x = activations(rows: 2)
        func proj(_ y: [Float], _ r: Int) -> Double { (0..<8).map { Double(y[r * 8 + $0]) * u[$0] }.reduce(0, +) }

        let out = try steer(x, [Intervention(.direction(dir), .projectOut)])
        for r in 0..<2 { #expect(abs(proj(out, r)) <= 1e-5) }
        let clamped = try steer(x, [Intervention(.direction(dir), .clamp(4))])
        for r in 0..<2 { #expect(abs(proj(clamped, r) - 4) <= 1e-5) }
        let added = try steer(x, [Intervention(.direction(dir), .add(2))])
        let expected = (0..<16).map { Double(x[$0]) + 2 * Double(v[$0 % 8]) }
        #expect(relativeError(added, expected) <= 1e-7)
        // Removing the component leaves the orthogonal part untouched: x − out is along u.
        for r in 0..<2 {
            let p = proj(x, r)
            for j in 0..<8 { #expect(abs(Double(x[r * 8 + j] - out[r * 8 + j]) - p * u[j]) <= 1e-5) }
        }
    }

    @Test func positionFilters() throws {
        let dir = Direction(name: "d", point: point, vector: [1, 0, 0, 0, 0, 0, 0, 0])
        let x = activations(rows: 4)
        let origins: [TokenOrigin] = [.prompt, .prompt, .generated, .generated]
        let y = try steer(x, [Intervention(.direction(dir), .add(10), positions: .generated)], origins: origins)
        #expect([y[0] - x[0], y[8] - x[8], y[16] - x[16], y[24] - x[24]] == [0, 0, 10, 10])
        let z = try steer(x, [Intervention(.direction(dir), .add(10), positions: .range(11..<12))], start: 10)
        #expect([z[0] - x[0], z[8] - x[8], z[16] - x[16]] == [0, 10, 0])
    }

    @Test func lastPositionsOfTheSequenceSoFar() throws {
        let dir = Direction(name: "d", point: point, vector: [1, 0, 0, 0, 0, 0, 0, 0])
        let x = activations(rows: 4)
        // Prefill of positions 0..<4: the last 2 are edited.
        let y = try steer(x, [Intervention(.direction(dir), .add(10), positions: .last(2))])
        #expect([y[0] - x[0], y[8] - x[8], y[16] - x[16], y[24] - x[24]] == [0, 0, 10, 10])
    }

    /// A prompt run as two calls, one step (a shared prefix, then a fork's rest): the rows of the
    /// first call count the last N from the step's end, so they hold none of them here.
    @Test func lastPositionsCountFromTheEndOfTheStep() throws {
        let dir = Direction(name: "d", point: point, vector: [1, 0, 0, 0, 0, 0, 0, 0])
        let plan = FeaturePlan()
        try plan.add(Intervention(.direction(dir), .add(10), positions: .last(2)))
        let hooks = HookSet()
        try plan.attach(to: hooks, model: info)
        let x = activations(rows: 4)
        var prefix = x
        try runHooks(hooks, at: point, blocks: 2, values: &prefix, width: 8, stepEnd: 6)
        #expect(prefix == x && plan.applications == [0])
        var rest = activations(rows: 2)
        try runHooks(hooks, at: point, blocks: 2, values: &rest, width: 8, start: 4)
        #expect(plan.applications == [2] && plan.appliedPositions == [[4, 5]])
        var partly = x
        try runHooks(hooks, at: point, blocks: 2, values: &partly, width: 8, start: 10, stepEnd: 15)
        #expect(plan.appliedPositions == [[4, 5, 13]])
    }

    /// The first prompt position each filter may edit, for a prompt run as one step.
    @Test func firstPromptPositions() {
        let cases: [(PositionFilter, Int?)] = [(.all, 0), (.prompt, 0), (.generated, nil), (.last(3), 7), (.last(20), 0),
                                               (.last(0), nil), (.range(4..<9), 4), (.range(12..<20), nil), (.range(5..<5), nil)]
        for (filter, first) in cases {
            #expect(filter.firstPromptPosition(length: 10) == first, "\(filter)")
            #expect(filter.mayAdmitPrompt(length: 10) == (first != nil), "\(filter)")
        }
        #expect(PositionFilter.all.firstPromptPosition(length: 0) == nil)
    }

    /// `.whileActive` edits exactly where its condition holds (an activation equal to an `atLeast`
    /// level holds, one equal to an `above` level does not); `.gate` where the gate says.
    @Test func whileAndGateTriggers() throws {
        let probe = Direction(name: "probe", point: point, vector: [1, 0, 0, 0, 0, 0, 0, 0])
        let push = Direction(name: "push", point: point, vector: [0, 1, 0, 0, 0, 0, 0, 0])
        var x = [Float](repeating: 0, count: 4 * 8)
        for (r, v) in [Float(1), 0.5, 2, 1].enumerated() { x[r * 8] = v }
        let inclusive = try steer(x, [Intervention(.direction(push), .add(1), trigger: .whileActive(FeatureCondition(.direction(probe), atLeast: 1)))])
        #expect([inclusive[1], inclusive[9], inclusive[17], inclusive[25]] == [1, 0, 1, 1])
        let strict = try steer(x, [Intervention(.direction(push), .add(1), trigger: .whileActive(FeatureCondition(.direction(probe), above: 1)))])
        #expect([strict[1], strict[9], strict[17], strict[25]] == [0, 0, 1, 0])

        final class Odd: InterventionGate { func isOpen(at position: Int) -> Bool { position % 2 == 1 } }
        let plan = FeaturePlan()
        try plan.add(Intervention(.direction(push), .add(1), trigger: .gate(Odd())))
        let hooks = HookSet()
        try plan.attach(to: hooks, model: info)
        var y = x
        try runHooks(hooks, at: point, blocks: 2, values: &y, width: 8, start: 10)
        #expect([y[1], y[9], y[17], y[25]] == [0, 1, 0, 1])
        #expect(plan.appliedPositions == [[11, 13]])
    }

    @Test func whileConditionAfterTheEditIsRejected() throws {
        let probe = Direction(name: "probe", point: point, vector: [1, 0, 0, 0, 0, 0, 0, 0])
        let push = Direction(name: "push", point: .residPost(0), vector: [0, 1, 0, 0, 0, 0, 0, 0])
        let plan = FeaturePlan()
        try plan.add(Intervention(.direction(push), .add(1), trigger: .whileActive(FeatureCondition(.direction(probe), atLeast: 1))))
        #expect(throws: FeatureError.badAction(argument: "add 1.0 push",
                                               reason: "its while condition on probe is read at blocks.1.hook_resid_post, after the edit at blocks.0.hook_resid_post")) {
            try plan.attach(to: HookSet(), model: info)
        }
    }

    /// A `.from` trigger applies from the first position where its condition holds, and on every
    /// later step, but not before.
    @Test func triggerFromFirstFiring() throws {
        let probe = Direction(name: "probe", point: point, vector: [1, 0, 0, 0, 0, 0, 0, 0])
        let push = Direction(name: "push", point: point, vector: [0, 1, 0, 0, 0, 0, 0, 0])
        var x = [Float](repeating: 0, count: 4 * 8)
        x[2 * 8] = 5   // the probe fires at position 2 only
        let plan = FeaturePlan()
        try plan.add(Intervention(.direction(push), .add(1), trigger: .from(FeatureCondition(.direction(probe), above: 1))))
        let hooks = HookSet()
        try plan.attach(to: hooks, model: info)
        var y = x
        try runHooks(hooks, at: point, blocks: 2, values: &y, width: 8)
        let pushed: [Float] = [y[1], y[9], y[17], y[25]]
        #expect(pushed == [0, 0, 1, 1])
        // The next decode step (position 4) is steered although the probe is silent there.
        var step = [Float](repeating: 0, count: 8)
        try runHooks(hooks, at: point, blocks: 2, values: &step, width: 8, start: 4)
        #expect(step[1] == 1)
        #expect(plan.applications == [3])
        plan.reset()
        var fresh = [Float](repeating: 0, count: 8)
        try runHooks(hooks, at: point, blocks: 2, values: &fresh, width: 8, start: 5)
        #expect(fresh[1] == 0)
    }

    @Test func monitorRecordsActiveLatentsAndReconstructionError() throws {
        let (b, fx) = try binding()
        let plan = FeaturePlan()
        let monitor = plan.monitor(b, top: 3)
        let x = activations(rows: 2)
        let e = x.withUnsafeBufferPointer { b.sae.encode($0.baseAddress!, count: 2) }
        try plan.add(Intervention(.latent(b, e.active(0)[0].index), .ablate))
        let hooks = HookSet()
        try plan.attach(to: hooks, model: info)
        var y = x
        try runHooks(hooks, at: point, blocks: 2, values: &y, width: 8, start: 3)
        #expect(monitor.records.count == 2)
        #expect(monitor.records.map(\.position) == [3, 4])
        // The monitor sees the activations before the edit.
        #expect(monitor.records[0].latents == Array(e.active(0).prefix(3)))
        let (ref, scale) = fx.referenceEncode(Array(x[0..<8]))
        let xHat = fx.referenceDecode(ref, scale: scale)
        var err = 0.0, norm = 0.0
        for j in 0..<8 {
            let a = Double(x[j]) - xHat[j]
            err += a * a
            norm += Double(x[j]) * Double(x[j])
        }
        let relative = err / norm
        #expect(abs(try #require(monitor.records[0].relativeError) - relative) <= 1e-5 * max(1, relative))
        #expect(monitor.records[0].l0 == ref.filter { $0 > 0 }.count)
        // Both positions (3 and 4) are prompt positions: the prompt tally has them, the generated one none.
        #expect(monitor.promptTally.count == 2 && monitor.generatedTally.count == 0)
        #expect(monitor.promptTally.squaredError >= err)

        // Without reconstruction: the same latents, no error and no tally.
        let lean = FeaturePlan()
        let leanMonitor = lean.monitor(b, top: 3, reconstruct: false)
        let leanHooks = HookSet()
        try lean.attach(to: leanHooks, model: info)
        var z = x
        try runHooks(leanHooks, at: point, blocks: 2, values: &z, width: 8, start: 3)
        #expect(leanMonitor.records.map(\.latents) == monitor.records.map(\.latents))
        #expect(leanMonitor.records.allSatisfy { $0.relativeError == nil } && leanMonitor.promptTally.count == 0)
    }

    @Test func directionMonitorAndFiringPosition() throws {
        let probe = Direction(name: "probe", point: point, vector: [2, 0, 0, 0, 0, 0, 0, 0])
        let plan = FeaturePlan()
        let watch = try plan.monitor(probe)
        let k = try plan.add(Intervention(.direction(probe), .ablate, trigger: .from(FeatureCondition(.direction(probe), above: 1))))
        let hooks = HookSet()
        try plan.attach(to: hooks, model: info)
        var x = [Float](repeating: 0, count: 3 * 8)
        x[8] = 3
        x[16] = -1
        try runHooks(hooks, at: point, blocks: 2, values: &x, width: 8, start: 5)
        #expect(watch.records.map(\.projection) == [0, 3, -1])
        #expect(watch.records.map(\.position) == [5, 6, 7])
        #expect(plan.firstFiring(of: k) == 6)
        #expect([x[8], x[16]] == [0, 0])
    }

    @Test func badTargetsAreRejected() throws {
        let (b, _) = try binding()
        let plan = FeaturePlan()
        #expect(throws: FeatureError.latentOutOfRange(pack: "fixture", index: 24, dSAE: 24)) {
            try plan.add(Intervention(.latent(b, 24), .ablate))
        }
        let zero = Direction(name: "z", point: point, vector: [Float](repeating: 0, count: 8))
        #expect(throws: FeatureError.zeroDirection(name: "z")) { try plan.add(Intervention(.direction(zero), .projectOut)) }
        let wide = Direction(name: "w", point: point, vector: [Float](repeating: 1, count: 9))
        try plan.add(Intervention(.direction(wide), .add(1)))
        #expect(throws: FeatureError.directionWidth(name: "w", expected: 8, found: 9)) {
            try plan.attach(to: HookSet(), model: info)
        }
        let other = FeaturePlan()
        try other.add(Intervention(.latent(SAEBinding(name: "far", sae: b.sae, point: .residPost(7)), 0), .ablate))
        #expect(throws: ModelError.self) { try other.attach(to: HookSet(), model: info) }
        let narrow = ModelInfo(architecture: "llama", blockCount: 2, width: 16, vocabularySize: 10, contextLength: 64)
        let p3 = FeaturePlan()
        try p3.add(Intervention(.latent(b, 0), .ablate))
        #expect(throws: FeatureError.widthMismatch(pack: "fixture", dIn: 8, modelWidth: 16)) {
            try p3.attach(to: HookSet(), model: narrow)
        }
    }
}

@Suite struct ContrastiveTests {
    @Test func meanDifferenceOfPairs() {
        let a: [[Float]] = [[1, 2], [3, 4]]
        let b: [[Float]] = [[0, 0], [1, 1]]
        #expect(ContrastiveDerivation.meanDifference(a, b) == [1.5, 2.5])
    }
}
