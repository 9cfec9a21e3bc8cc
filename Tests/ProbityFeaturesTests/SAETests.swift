// SAEs in SAELens's layout: each architecture, normalisation and weight type checked against the
// plain float64 reference in FeatureTestSupport; the old config layout upgraded; bad files rejected
// with a specific error.

import Foundation
import ProbityTensor
import Testing
@testable import ProbityFeatures

@Suite struct SAELoadingTests {
    static let architectures = ["standard", "jumprelu", "topk"]
    static let normalizations: [String] = ["none", "constant_norm_rescale", "expected_average_only_in"]

    func inputs(_ fixture: SAEFixture, count: Int, seed: UInt64 = 99) -> [Float] {
        var rng = SplitMix64(seed)
        return rng.floats(count * fixture.dIn).map { $0 * 3 }
    }

    @Test(arguments: architectures, normalizations)
    func encodeAndDecodeMatchReference(architecture: String, normalization: String) throws {
        for applyBDec in [true, false] {
            var fx = SAEFixture(architecture: architecture, normalization: normalization, applyBDec: applyBDec)
            let dir = try fx.write(to: try scratchDirectory())
            let sae = try SparseAutoencoder.load(directory: dir.path)
            let rows = 5
            let x = inputs(fx, count: rows)
            let e = x.withUnsafeBufferPointer { sae.encode($0.baseAddress!, count: rows) }
            for r in 0..<rows {
                let row = Array(x[(r * fx.dIn)..<((r + 1) * fx.dIn)])
                let (ref, scale) = fx.referenceEncode(row)
                let f = Array(e.latents[(r * fx.dSAE)..<((r + 1) * fx.dSAE)])
                #expect(relativeError(f, ref) <= 1e-5, "\(architecture)/\(normalization) row \(r): \(f.prefix(4)) vs \(ref.prefix(4))")
                // The same latents are active (no threshold flips from rounding in these fixtures).
                #expect(f.map { $0 != 0 } == ref.map { $0 != 0 })
                var xHat = [Float](repeating: 0, count: fx.dIn)
                f.withUnsafeBufferPointer { fp in xHat.withUnsafeMutableBufferPointer { sae.decode(fp.baseAddress!, scale: e.scales[r], into: $0.baseAddress!) } }
                #expect(relativeError(xHat, fx.referenceDecode(ref, scale: scale)) <= 1e-5)
            }
            if architecture == "topk" {
                for r in 0..<rows { #expect(e.active(r).count <= fx.k) }
            }
        }
    }

    @Test(arguments: [WeightType.f16, .bf16])
    func halfPrecisionWeightsLoadExactly(type: WeightType) throws {
        var fx = SAEFixture(architecture: "jumprelu", type: type)
        let dir = try fx.write(to: try scratchDirectory())
        let sae = try SparseAutoencoder.load(directory: dir.path)
        #expect(sae.wEnc == fx.wEnc && sae.wDec == fx.wDec && sae.bEnc == fx.bEnc && sae.bDec == fx.bDec)
        #expect(sae.threshold == fx.threshold)
    }

    @Test func v6ConfigIsRead() throws {
        var fx = SAEFixture(architecture: "topk", k: 7, normalization: "constant_norm_rescale", applyBDec: false)
        let sae = try SparseAutoencoder.load(directory: try fx.write(to: try scratchDirectory()).path)
        #expect(sae.config == SAEConfig(dIn: 8, dSAE: 24, architecture: .topK(7), applyBDecToInput: false,
                                        normalization: .constantNormRescale, hookName: "blocks.1.hook_resid_post",
                                        modelName: "smollm2-135m", legacyLayout: false))
    }

    @Test func legacyConfigIsUpgraded() throws {
        var fx = SAEFixture(architecture: "topk", k: 3, normalization: true, legacy: true, hook: "blocks.4.hook_resid_pre")
        let sae = try SparseAutoencoder.load(directory: try fx.write(to: try scratchDirectory()).path)
        #expect(sae.config.architecture == .topK(3))
        #expect(sae.config.normalization == .expectedAverageOnlyIn(scale: nil))
        #expect(sae.config.hookName == "blocks.4.hook_resid_pre")
        #expect(sae.config.legacyLayout)

        var plain = SAEFixture(normalization: false, legacy: true)
        let s2 = try SparseAutoencoder.load(directory: try plain.write(to: try scratchDirectory()).path)
        #expect(s2.config.architecture == .standard && s2.config.normalization == ActivationNormalization.none)
    }

    @Test func expectedAverageScaleFromConfig() throws {
        var fx = SAEFixture(normalization: "expected_average_only_in")
        var cfg = fx.config
        cfg["norm_scaling_factor"] = 2.0
        let sae = try SparseAutoencoder.load(directory: try fx.write(to: try scratchDirectory(), config: cfg).path)
        #expect(sae.config.normalization == .expectedAverageOnlyIn(scale: 2))
        // Scaling the input by 2 and the reconstruction by 1/2 equals encoding 2x with no normalisation.
        let x = inputs(fx, count: 1)
        let e = x.withUnsafeBufferPointer { sae.encode($0.baseAddress!, count: 1) }
        let (ref, _) = fx.referenceEncode(x.map { $0 * 2 })
        #expect(relativeError(e.latents, ref) <= 1e-5)
        #expect(e.scales == [2])
    }

    /// JumpReLU keeps a unit only when pre > threshold (SAELens): equality is off.
    @Test func jumpReLUThresholdIsStrict() throws {
        let cfg = SAEConfig(dIn: 1, dSAE: 3, architecture: .jumpReLU, applyBDecToInput: false)
        let sae = try SparseAutoencoder(config: cfg, wEnc: [1, 1, 1], bEnc: [0, 0, 0], wDec: [1, 1, 1], bDec: [0],
                                        threshold: [0.5, 0.49, 0.51])
        let e = [Float(0.5)].withUnsafeBufferPointer { sae.encode($0.baseAddress!, count: 1) }
        #expect(e.latents == [0, 0.5, 0])
    }

    /// TopK keeps the k largest pre-activations (ties to the lower index) and ReLUs them.
    @Test func topKSelection() throws {
        let cfg = SAEConfig(dIn: 1, dSAE: 5, architecture: .topK(3), applyBDecToInput: false)
        let sae = try SparseAutoencoder(config: cfg, wEnc: [1, 1, 1, 1, 1], bEnc: [-2, 3, 1, 3, -5], wDec: [Float](repeating: 1, count: 5),
                                        bDec: [0], threshold: nil)
        let e = [Float(0)].withUnsafeBufferPointer { sae.encode($0.baseAddress!, count: 1) }
        #expect(e.latents == [0, 3, 1, 3, 0])
        let neg = SAEConfig(dIn: 1, dSAE: 3, architecture: .topK(2), applyBDecToInput: false)
        let s2 = try SparseAutoencoder(config: neg, wEnc: [1, 1, 1], bEnc: [-1, -2, -3], wDec: [1, 1, 1], bDec: [0], threshold: nil)
        let e2 = [Float(0)].withUnsafeBufferPointer { s2.encode($0.baseAddress!, count: 1) }
        #expect(e2.latents == [0, 0, 0])
    }
}

@Suite struct SAEBadInputTests {
    func load(_ fx: inout SAEFixture, config: [String: Any]? = nil,
              edit: (inout [String: ([Int], [Float])]) -> Void = { _ in }) throws -> SparseAutoencoder {
        let dir = try fx.write(to: try scratchDirectory(), config: config, edit: edit)
        return try SparseAutoencoder.load(directory: dir.path)
    }

    @Test func wrongShape() throws {
        var fx = SAEFixture()
        fx.makeWeights()
        let w = fx.wEnc
        #expect {
            _ = try load(&fx) { $0["W_enc"] = ([24, 8], w) }
        } throws: { error in
            guard case let FeatureError.tensorShape(_, name, expected, found) = error else { return false }
            return name == "W_enc" && expected == [8, 24] && found == [24, 8]
        }
    }

    @Test func missingTensor() throws {
        var fx = SAEFixture(architecture: "jumprelu")
        #expect {
            _ = try load(&fx) { $0["threshold"] = nil }
        } throws: { error in
            guard case let FeatureError.missingTensor(_, name) = error else { return false }
            return name == "threshold"
        }
    }

    @Test func unknownArchitecture() throws {
        var fx = SAEFixture()
        var cfg = fx.config
        cfg["architecture"] = "gated"
        #expect {
            _ = try load(&fx, config: cfg)
        } throws: { error in
            guard case let FeatureError.unknownArchitecture(_, found) = error else { return false }
            return found == "gated"
        }
    }

    @Test func unknownNormalization() throws {
        var fx = SAEFixture(normalization: "layer_norm")
        #expect {
            _ = try load(&fx)
        } throws: { error in
            guard case let FeatureError.unknownNormalization(_, found) = error else { return false }
            return found == "layer_norm"
        }
    }

    @Test func nanInWeights() throws {
        var fx = SAEFixture()
        fx.makeWeights()
        var w = fx.wDec
        w[17] = .nan
        let shape = [fx.dSAE, fx.dIn]
        #expect {
            _ = try load(&fx) { $0["W_dec"] = (shape, w) }
        } throws: { error in
            guard case let FeatureError.nonFinite(_, name, index) = error else { return false }
            return name == "W_dec" && index == 17
        }
    }

    @Test func missingConfigKey() throws {
        var fx = SAEFixture()
        var cfg = fx.config
        cfg["d_sae"] = nil
        #expect {
            _ = try load(&fx, config: cfg)
        } throws: { error in
            guard case let FeatureError.missingConfigKey(_, key) = error else { return false }
            return key == "d_sae"
        }
    }

    @Test func missingTopKK() throws {
        var fx = SAEFixture(architecture: "topk")
        var cfg = fx.config
        cfg["k"] = nil
        #expect {
            _ = try load(&fx, config: cfg)
        } throws: { error in
            guard case let FeatureError.missingConfigKey(_, key) = error else { return false }
            return key == "k"
        }
    }

    @Test func notADirectory() throws {
        let dir = try scratchDirectory()
        #expect {
            _ = try SparseAutoencoder.load(directory: dir.path)
        } throws: { error in
            guard case let FeatureError.missingFile(_, what) = error else { return false }
            return what == "cfg.json"
        }
    }

    @Test func errorsReadAsOneLine() {
        let e = FeatureError.tensorShape(path: "sae/sae_weights.safetensors", name: "W_enc", expected: [576, 8192], found: [8192, 576])
        #expect(e.description == "sae/sae_weights.safetensors: tensor W_enc: expected shape [576, 8192], found [8192, 576]")
    }
}
