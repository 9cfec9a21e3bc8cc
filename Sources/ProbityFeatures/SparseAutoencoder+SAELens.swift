// Loading an SAE from SAELens's on-disk layout: a directory with cfg.json and
// sae_weights.safetensors (W_enc [d_in, d_sae], b_enc, W_dec [d_sae, d_in], b_dec, threshold).

import Foundation
import ProbityFormats

extension SparseAutoencoder {
    /// The file names SAELens writes.
    public static let configFileName = "cfg.json"
    public static let weightsFileName = "sae_weights.safetensors"

    /// Whether `directory` holds an SAE in SAELens's layout.
    public static func isSAELensDirectory(_ directory: String) -> Bool {
        let fm = FileManager.default
        return fm.fileExists(atPath: directory + "/" + configFileName) && fm.fileExists(atPath: directory + "/" + weightsFileName)
    }

    /// Loads the SAE in `directory`. Every tensor is checked for presence, shape (against cfg.json's
    /// d_in and d_sae), element type (F32, F16 or BF16) and finiteness.
    public static func load(directory: String) throws -> SparseAutoencoder {
        let cfgPath = directory + "/" + configFileName
        let weightsPath = directory + "/" + weightsFileName
        guard let cfgData = FileManager.default.contents(atPath: cfgPath) else {
            throw FeatureError.missingFile(path: directory, what: configFileName)
        }
        let config = try SAEConfig.parse(cfgData, path: cfgPath)
        guard FileManager.default.fileExists(atPath: weightsPath) else {
            throw FeatureError.missingFile(path: directory, what: weightsFileName)
        }
        let file = try SafeTensorsFile(path: weightsPath)
        let d = config.dIn, n = config.dSAE

        func tensor(_ name: String, _ shape: [Int]) throws -> [Float] {
            guard let t = file.tensor(named: name) else { throw FeatureError.missingTensor(path: weightsPath, name: name) }
            guard t.shape == shape else {
                throw FeatureError.tensorShape(path: weightsPath, name: name, expected: shape, found: t.shape)
            }
            switch t.dtype {
            case .f32, .f16, .bf16: return try file.floats(for: t)
            default: throw FeatureError.tensorType(path: weightsPath, name: name, expected: "F32, F16 or BF16", found: t.dtype.rawValue)
            }
        }
        // Older SAELens files may carry a fine-tuning `scaling_factor`; all ones means none.
        if file.tensor(named: "scaling_factor") != nil {
            let s = try tensor("scaling_factor", [n])
            guard s.allSatisfy({ $0 == 1 }) else {
                throw FeatureError.badConfigValue(path: weightsPath, key: "scaling_factor",
                                                  expected: "all ones (fine-tuning scaling factors are not supported)",
                                                  found: "other values")
            }
        }
        let threshold: [Float]? = config.architecture == .jumpReLU ? try tensor("threshold", [n]) : nil
        return try SparseAutoencoder(
            config: config, wEnc: try tensor("W_enc", [d, n]), bEnc: try tensor("b_enc", [n]),
            wDec: try tensor("W_dec", [n, d]), bDec: try tensor("b_dec", [d]), threshold: threshold, path: weightsPath)
    }
}
