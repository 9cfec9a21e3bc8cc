// TopK SAE trainer tests: recovery of planted sparse directions, agreement of the training forward
// pass with the features module's SAE, pack round trip, and checkpoint/resume giving the same run.

import Foundation
import ProbityTensor
import Testing
@testable import ProbityTraining
import ProbityFeatures

/// k-sparse data from `m` random unit directions in `d` dimensions.
struct PlantedProblem {
    let d: Int, m: Int, active: Int
    let directions: [[Float]]
    var rng: SplitMix64

    init(d: Int, m: Int, active: Int, seed: UInt64) {
        self.d = d
        self.m = m
        self.active = active
        var rng = SplitMix64(seed: seed)
        directions = (0..<m).map { _ in
            let v = (0..<d).map { _ in rng.nextGaussian() }
            let norm = v.map { $0 * $0 }.reduce(0, +).squareRoot()
            return v.map { $0 / norm }
        }
        self.rng = rng
    }

    /// `count` rows: each a sum of `active` distinct directions with magnitudes in [1, 2], plus an offset.
    mutating func batch(_ count: Int) -> [Float] {
        var x = [Float](repeating: 0, count: count * d)
        for r in 0..<count {
            // In the order drawn: a Set's iteration order changes from process to process (hashing
            // is seeded per process), and with it which magnitude each direction gets.
            var chosen: [Int] = []
            while chosen.count < active {
                let i = rng.next(below: m)
                if !chosen.contains(i) { chosen.append(i) }
            }
            for i in chosen {
                let a = Float(1 + rng.nextUnit())
                for j in 0..<d { x[r * d + j] += a * directions[i][j] }
            }
            for j in 0..<d { x[r * d + j] += 0.5 }
        }
        return x
    }
}

func cosine(_ a: [Float], _ b: [Float]) -> Float {
    var ab: Float = 0, aa: Float = 0, bb: Float = 0
    for j in a.indices { ab += a[j] * b[j]; aa += a[j] * a[j]; bb += b[j] * b[j] }
    return ab / (aa.squareRoot() * bb.squareRoot())
}

@Suite struct TopKTrainerTests {
    static func options(steps: Int) -> TopKTrainingOptions {
        var o = TopKTrainingOptions(dIn: 32, latents: 128, k: 3, totalSteps: steps)
        o.batchSize = 256
        o.learningRate = 3e-3
        o.warmupSteps = 20
        o.deadAfterTokens = 256 * 20
        o.auxK = 16
        o.seed = 7
        return o
    }

    /// Planted problems 1–6: 64 directions, 3 active per row, 128 latents, 1500 steps. Most runs
    /// recover every direction (cosine ≥ 0.9 with some decoder row); some settle with one latent
    /// between two directions, which no longer get a row each. Seeds 1–12, measured once: 8 recover
    /// all 64, 4 leave exactly 2 below 0.9 (worst 0.82–0.85), and 4000 steps did not separate 3 of
    /// those 4: a local optimum, not too few steps. Which runs settle so depends on summation order,
    /// so on the CPU (its vector kernels' level); the test holds what does not: at most 2 of 64
    /// missed in every run, and some run missing none (here 4 of the 6 do).
    @Test func recoversPlantedDirections() throws {
        var complete = 0
        for seed in UInt64(1)...6 {
            var problem = PlantedProblem(d: 32, m: 64, active: 3, seed: seed)
            let steps = 1500
            let o = Self.options(steps: steps)
            let first = problem.batch(4096)
            let trainer = try TopKTrainer(options: o, sample: first, count: 4096)
            var last = TopKStepStats(mse: 0, auxLoss: 0, fvu: 1, l0: 0, deadFraction: 0, learningRate: 0)
            for _ in 0..<steps {
                let x = problem.batch(o.batchSize)
                last = x.withUnsafeBufferPointer { trainer.train($0.baseAddress!, count: o.batchSize) }
            }
            let rows = (0..<o.latents).map { trainer.decoderRow($0) }
            let best = problem.directions.map { dir in rows.map { cosine($0, dir) }.max() ?? 0 }
            let missed = best.filter { $0 < 0.9 }.count
            if missed == 0 { complete += 1 }
            #expect(missed <= 2, "seed \(seed): \(missed) of 64 directions below cosine 0.9 (worst \(best.min() ?? 0))")
            #expect(last.fvu < 0.1, "seed \(seed): final FVU \(last.fvu)")
            for row in rows { #expect(abs(row.map { $0 * $0 }.reduce(0, +) - 1) < 1e-4) }
        }
        #expect(complete >= 1, "none of 6 runs recovered every direction")
    }

    /// The trainer's own forward pass (before the update) gives the loss the features module's
    /// SparseAutoencoder gives for the same weights.
    @Test func trainingForwardMatchesFeatureModuleSAE() throws {
        var problem = PlantedProblem(d: 32, m: 64, active: 3, seed: 2)
        let o = Self.options(steps: 10)
        let trainer = try TopKTrainer(options: o, sample: problem.batch(512), count: 512)
        for _ in 0..<3 { let x = problem.batch(256); x.withUnsafeBufferPointer { _ = trainer.train($0.baseAddress!, count: 256) } }
        let x = problem.batch(256)
        let sae = try trainer.makeSAE()
        let enc = x.withUnsafeBufferPointer { sae.encode($0.baseAddress!, count: 256) }
        var sse = 0.0
        var out = [Float](repeating: 0, count: 32)
        for r in 0..<256 {
            enc.latents.withUnsafeBufferPointer { f in sae.decode(f.baseAddress! + r * 128, scale: 1, into: &out) }
            for j in 0..<32 { let e = Double(out[j]) - Double(trainer.scale * x[r * 32 + j]); sse += e * e }
            #expect(enc.l0(r) <= 3)
        }
        let stats = x.withUnsafeBufferPointer { trainer.train($0.baseAddress!, count: 256) }
        #expect(abs(stats.mse - sse / 256) <= 1e-4 * max(1, sse / 256), "trainer \(stats.mse) vs SAE \(sse / 256)")
    }

    @Test func packRoundTrips() throws {
        var problem = PlantedProblem(d: 32, m: 64, active: 3, seed: 3)
        let o = Self.options(steps: 5)
        let trainer = try TopKTrainer(options: o, sample: problem.batch(512), count: 512)
        for _ in 0..<5 { let x = problem.batch(256); x.withUnsafeBufferPointer { _ = trainer.train($0.baseAddress!, count: 256) } }
        let sae = try trainer.makeSAE(hookName: "blocks.1.hook_resid_post", modelName: "tiny")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("probity-sae-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try SAEPackWriter.write(sae, to: dir, hookName: "blocks.1.hook_resid_post", modelName: "tiny", contextSize: 64,
                                datasets: ["x.txt"], metrics: ["fvu": 0.5], provenance: ["seed": 7])
        let pack = try FeaturePack.load(path: dir)
        #expect(pack.kind == .sae)
        #expect(pack.hook.name == "blocks.1.hook_resid_post")
        let loaded = try #require(pack.sae)
        #expect(loaded.config.architecture == .topK(3))
        #expect(loaded.config.normalization == .expectedAverageOnlyIn(scale: trainer.scale))
        #expect(loaded.wEnc == sae.wEnc && loaded.wDec == sae.wDec && loaded.bEnc == sae.bEnc && loaded.bDec == sae.bDec)
        let x = problem.batch(64)
        let a = x.withUnsafeBufferPointer { sae.encode($0.baseAddress!, count: 64) }
        let b = x.withUnsafeBufferPointer { loaded.encode($0.baseAddress!, count: 64) }
        #expect(a.latents == b.latents)
        #expect(a.latents.contains { $0 != 0 })
    }

    /// N steps, checkpoint, reload, N more steps: bit-identical to 2N steps in one go.
    @Test func resumeMatchesUninterruptedRun() throws {
        let o = Self.options(steps: 40)
        var p1 = PlantedProblem(d: 32, m: 64, active: 3, seed: 4)
        let sample = p1.batch(512)
        let batches = (0..<40).map { _ in p1.batch(256) }
        let whole = try TopKTrainer(options: o, sample: sample, count: 512)
        for x in batches { x.withUnsafeBufferPointer { _ = whole.train($0.baseAddress!, count: 256) } }

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("probity-ckpt-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try TopKTrainer(options: o, sample: sample, count: 512)
        for x in batches[0..<20] { x.withUnsafeBufferPointer { _ = first.train($0.baseAddress!, count: 256) } }
        let run = ["model": "tiny"]
        try TrainingCheckpoint.save(first, stream: StreamPosition(documentsConsumed: 3, buffersFilled: 2), run: run, to: dir)
        let (second, position) = try TrainingCheckpoint.load(from: dir, expecting: o, run: run)
        #expect(position == StreamPosition(documentsConsumed: 3, buffersFilled: 2))
        #expect(second.step == 20 && second.tokensSeen == 20 * 256)
        for x in batches[20...] { x.withUnsafeBufferPointer { _ = second.train($0.baseAddress!, count: 256) } }
        #expect(second.stateTensors.map(\.2) == whole.stateTensors.map(\.2))
        #expect(second.lastFired == whole.lastFired)

        var other = o
        other.k = 4
        #expect(throws: TrainingError.self) { _ = try TrainingCheckpoint.load(from: dir, expecting: other, run: run) }
        #expect(throws: TrainingError.checkpointMismatch(path: dir, key: "model", checkpoint: "tiny", requested: "big")) {
            _ = try TrainingCheckpoint.load(from: dir, expecting: o, run: ["model": "big"])
        }
    }

    @Test func badOptions() {
        #expect(throws: TrainingError.badArgument(name: "latents", expected: "a positive number of latents", found: "0")) {
            try TopKTrainingOptions(dIn: 8, latents: 0, k: 1, totalSteps: 1).validate()
        }
        #expect(throws: TrainingError.badArgument(name: "k", expected: "1 to the number of latents (4)", found: "5")) {
            try TopKTrainingOptions(dIn: 8, latents: 4, k: 5, totalSteps: 1).validate()
        }
    }

    @Test func learningRateSchedule() throws {
        var o = TopKTrainingOptions(dIn: 4, latents: 8, k: 2, totalSteps: 100)
        o.warmupSteps = 10
        o.decayFraction = 0.2
        o.learningRate = 1
        let t = try TopKTrainer(options: o, sample: [1, 2, 3, 4], count: 1)
        #expect(t.learningRate(at: 0) == 0.1)
        #expect(t.learningRate(at: 9) == 1)
        #expect(t.learningRate(at: 50) == 1)
        #expect(t.learningRate(at: 80) == 1)
        #expect(t.learningRate(at: 90) == 0.5)
        #expect(abs(t.scale * Float(30).squareRoot() - 2) < 1e-5)   // ‖x‖ = √30 scaled to √4
    }

    /// The result minimises the summed distance: no small step improves it, and it beats the mean.
    @Test func geometricMedianMinimisesSummedDistance() {
        var rng = SplitMix64(seed: 5)
        let d = 3, count = 30
        var rows = (0..<(count * d)).map { _ in rng.nextGaussian() }
        for j in 0..<d { rows[j] = 500 }   // one far outlier drags the mean, not the median
        func cost(_ y: [Float]) -> Double {
            var total = 0.0
            for r in 0..<count {
                var ss = 0.0
                for j in 0..<d {
                    let t = Double(rows[r * d + j]) - Double(y[j])
                    ss += t * t
                }
                total += ss.squareRoot()
            }
            return total
        }
        let m = geometricMedian(rows, count: count, width: d, iterations: 500)
        var mean = [Float](repeating: 0, count: d)
        for r in 0..<count { for j in 0..<d { mean[j] += rows[r * d + j] / Float(count) } }
        #expect(cost(m) < cost(mean))
        for j in 0..<d {
            for delta: Float in [-0.01, 0.01] {
                var y = m
                y[j] += delta
                #expect(cost(m) <= cost(y) + 1e-6)
            }
        }
        #expect(m.allSatisfy { abs($0) < 1 })
    }
}
