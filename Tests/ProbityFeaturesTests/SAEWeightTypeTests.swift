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
        var rng = SeededRandom(17)
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
        var rng = SeededRandom(3)
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
}
