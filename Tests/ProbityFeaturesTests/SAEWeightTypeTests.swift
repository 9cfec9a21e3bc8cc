// SAE weights held in F16 and BF16: the same math as the plain float32 path on the same (exactly
// representable) weights, within summation-order rounding; files keep their stored type; the
// result does not depend on the thread count.

import Foundation
import ProbityTensor
import Testing
@testable import ProbityFeatures

@Suite struct SAEWeightTypeTests {
    static let pool = ThreadPool(threads: 3)

    /// A random SAE on a grid every type holds exactly, built as `type`.
    static func sae(_ fx: SAEFixture, _ type: GGMLType, architecture: SAEArchitecture) throws -> SparseAutoencoder {
        try SparseAutoencoder(config: SAEConfig(dIn: fx.dIn, dSAE: fx.dSAE, architecture: architecture),
                              wEnc: fx.wEnc, bEnc: fx.bEnc, wDec: fx.wDec, bDec: fx.bDec,
                              threshold: architecture == .jumpReLU ? fx.threshold : nil, weightType: type)
    }

    static func fixture(dIn: Int, dSAE: Int, seed: UInt64) -> SAEFixture {
        var fx = SAEFixture(dIn: dIn, dSAE: dSAE, type: .bf16, seed: seed)   // grid of 1/128: exact in BF16 and F16
        fx.makeWeights()
        return fx
    }

    @Test(arguments: [GGMLType.f16, .bf16], [1, 3, 17, 40])
    func halfWeightsMatchTheFloatPath(type: GGMLType, rows: Int) throws {
        let fx = Self.fixture(dIn: 96, dSAE: 200, seed: 5)
        var rng = SplitMix64(17)
        let x = rng.floats(rows * fx.dIn).map { $0 * 3 }
        for architecture in [SAEArchitecture.standard, .jumpReLU, .topK(9)] {
            let plain = try Self.sae(fx, .f32, architecture: architecture)
            let half = try Self.sae(fx, type, architecture: architecture)
            #expect(half.weightType == type && plain.weightType == .f32)
            #expect(half.wEnc == fx.wEnc && half.wDec == fx.wDec)   // held exactly
            let a = x.withUnsafeBufferPointer { plain.encode($0.baseAddress!, count: rows) }
            let b = x.withUnsafeBufferPointer { half.encode($0.baseAddress!, count: rows, pool: Self.pool) }
            // Same weights, same inputs: only the order of summation differs (d_in = 96 terms).
            var worst = 0.0
            for r in 0..<rows {
                let scale = (0..<fx.dSAE).map { i in (0..<fx.dIn).reduce(0.0) { $0 + abs(Double(fx.wEnc[$1 * fx.dSAE + i]) * Double(x[r * fx.dIn + $1] - fx.bDec[$1])) } }
                for i in 0..<fx.dSAE {
                    let e = abs(Double(a.latent(i, row: r)) - Double(b.latent(i, row: r))) / max(scale[i], 1e-30)
                    worst = max(worst, e)
                }
                #expect(a.active(r).map(\.index) == b.active(r).map(\.index), "\(architecture) row \(r): active latents differ")
                #expect(a.l0(r) == b.l0(r))
                var xa = [Float](repeating: 0, count: fx.dIn), xb = xa
                xa.withUnsafeMutableBufferPointer { plain.decode(a, row: r, into: $0.baseAddress!) }
                xb.withUnsafeMutableBufferPointer { half.decode(b, row: r, into: $0.baseAddress!) }
                #expect(relativeError(xb, xa) <= 1e-5, "\(architecture) row \(r) reconstruction")
            }
            #expect(worst <= 1e-5, "\(type) \(architecture) batch \(rows): worst error \(worst) of Σ|w·x|")
        }
    }

    @Test(arguments: [GGMLType.f32, .f16, .bf16])
    func resultsDoNotDependOnTheThreadCount(type: GGMLType) throws {
        let fx = Self.fixture(dIn: 64, dSAE: 300, seed: 9)
        let sae = try Self.sae(fx, type, architecture: .topK(12))
        var rng = SplitMix64(3)
        for rows in [1, 5, 33] {
            let x = rng.floats(rows * fx.dIn)
            let serial = x.withUnsafeBufferPointer { sae.encode($0.baseAddress!, count: rows) }
            let threaded = x.withUnsafeBufferPointer { sae.encode($0.baseAddress!, count: rows, pool: Self.pool) }
            #expect(serial.latents.map(\.bitPattern) == threaded.latents.map(\.bitPattern), "\(type) batch \(rows)")
        }
    }

    @Test func decoderEditsUseTheStoredRows() throws {
        let fx = Self.fixture(dIn: 16, dSAE: 40, seed: 2)
        let sae = try Self.sae(fx, .f16, architecture: .standard)
        for i in [0, 17, 39] {
            #expect(sae.decoderRow(i) == Array(fx.wDec[(i * 16)..<((i + 1) * 16)]))
            #expect(sae.encoderRow(i) == (0..<16).map { fx.wEnc[$0 * 40 + i] })
            var x = [Float](repeating: 1, count: 16)
            x.withUnsafeMutableBufferPointer { sae.addDecoderRow(i, times: 0.5, scale: 2, to: $0.baseAddress!) }
            #expect(x == (0..<16).map { 1 + 0.25 * fx.wDec[i * 16 + $0] })
        }
    }

    @Test(arguments: [WeightType.f32, .f16, .bf16])
    func filesKeepTheirStoredType(type: WeightType) throws {
        var fx = SAEFixture(architecture: "topk", type: type)
        let sae = try SparseAutoencoder.load(directory: try fx.write(to: try scratchDirectory()).path)
        let expected: GGMLType = switch type { case .f32: .f32; case .f16: .f16; case .bf16: .bf16 }
        #expect(sae.weightType == expected && sae.decoderWeightType == expected)
        #expect(sae.wEnc == fx.wEnc && sae.wDec == fx.wDec)
    }

    @Test(arguments: [WeightType.f16, .bf16])
    func infinityInHalfWeightsIsRejectedAtItsIndex(type: WeightType) throws {
        var fx = SAEFixture(type: type)
        let dir = try fx.write(to: try scratchDirectory()) { t in
            var w = t["W_dec"]!.1
            w[37] = .infinity
            t["W_dec"] = (t["W_dec"]!.0, w)
        }
        #expect(throws: FeatureError.nonFinite(path: dir.path + "/sae_weights.safetensors", name: "W_dec", index: 37)) {
            _ = try SparseAutoencoder.load(directory: dir.path)
        }
    }

    @Test(arguments: [GGMLType.f32, .f16, .bf16])
    func screenedEncodeGivesTheFullProductsBits(type: GGMLType) throws {
        // One position is screened through a Q8_0 copy; the latents must be the full path's, bit
        // for bit, for every architecture, including exact ties (a coarse weight grid makes many).
        var rng = SplitMix64(21)
        for (dIn, dSAE, steps) in [(64, 500, 128), (96, 300, 4), (32, 1000, 2)] {
            var fx = SAEFixture(dIn: dIn, dSAE: dSAE, type: .bf16)
            fx.wEnc = rng.floats(dIn * dSAE, steps: steps)
            fx.bEnc = rng.floats(dSAE, steps: steps).map { $0 * 0.25 }
            fx.wDec = rng.floats(dSAE * dIn, steps: steps)
            fx.bDec = rng.floats(dIn, steps: steps).map { $0 * 0.5 }
            fx.threshold = rng.floats(dSAE, steps: steps).map { abs($0) * 2 }
            for architecture in [SAEArchitecture.topK(1), .topK(16), .topK(dSAE - 1), .standard, .jumpReLU] {
                let sae = try Self.sae(fx, type, architecture: architecture)
                for trial in 0..<20 {
                    let scale: Float = trial % 4 == 0 ? 0 : Float(trial % 5) * 2   // all-zero inputs too
                    let x = rng.floats(dIn, steps: steps).map { $0 * scale }
                    let full = x.withUnsafeBufferPointer { sae.encode($0.baseAddress!, count: 1, pool: Self.pool, screening: false) }
                    let screened = x.withUnsafeBufferPointer { sae.encode($0.baseAddress!, count: 1, pool: Self.pool, screening: true) }
                    #expect(screened.latents.map(\.bitPattern) == full.latents.map(\.bitPattern),
                            "\(type) \(dIn)×\(dSAE) \(architecture) trial \(trial)")
                    #expect(screened.active(0) == full.active(0))
                }
            }
        }
    }

    @Test func screeningBoundsHoldOnRandomRows() throws {
        // The bound itself, against the F16 kernel's products on rows of very different scales.
        var rng = SplitMix64(8)
        let rows = 400, cols = 128
        let w = (0..<(rows * cols)).map { i in rng.grid(1024) * Float(1 << ((i / cols) % 12)) / 64 }
        let m = try OwnedMatrix(type: .f16, rows: rows, cols: cols) { raw in
            let p = raw.bindMemory(to: UInt16.self)
            for i in 0..<w.count { p[i] = HalfPrecision.halfBits(w[i]) }
        }
        let screen = try #require(ScreeningMatrix(m.matrix))
        for _ in 0..<10 {
            let x = rng.floats(cols).map { $0 * 7 }
            var exact = [Float](repeating: 0, count: rows), approx = exact, bound = exact
            m.matrix.multiply(x, batch: 1, into: &exact, pool: Self.pool)
            x.withUnsafeBufferPointer { xp in
                screen.screen(xp.baseAddress!, approx: &approx, bound: &bound, pool: Self.pool)
            }
            let bad = (0..<rows).filter { abs(Double(exact[$0]) - Double(approx[$0])) > Double(bound[$0]) }
            #expect(bad.isEmpty, "first rows outside their bound: \(bad.prefix(3).map { (exact[$0], approx[$0], bound[$0]) })")
            // And the bound is tight enough to screen: well under the spread of the products.
            let spread = exact.map { abs($0) }.reduce(0, +) / Float(rows)
            #expect(bound.reduce(0, +) / Float(rows) < 0.2 * spread)
        }
    }
}
