// Loading an SAE from SAELens's on-disk layout: a directory with cfg.json and
// sae_weights.safetensors (W_enc [d_in, d_sae], b_enc, W_dec [d_sae, d_in], b_dec, threshold).

import Foundation
import ProbityFormats
import ProbityTensor

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
        guard let cfgData = try WholeFile.contents(cfgPath, what: configFileName, limit: FileSizeLimits.smallJSON) else {
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
        // W_enc is stored (d_in, d_sae); its rows in memory are latents: element (i, j) = stored (j, i).
        let encoder = try matrix(file, "W_enc", shape: [d, n], rows: n, cols: d, path: weightsPath) { i, j in j * n + i }
        let decoder = try matrix(file, "W_dec", shape: [n, d], rows: n, cols: d, path: weightsPath) { i, j in i * d + j }
        return try SparseAutoencoder(
            config: config, encoder: encoder, decoder: decoder, bEnc: try tensor("b_enc", [n]),
            bDec: try tensor("b_dec", [d]), threshold: threshold, path: weightsPath)
    }

    /// A `rows` × `cols` matrix in the tensor's own element type (F32, F16 or BF16), element (i, j)
    /// taken from stored element `index(i, j)`; every stored value checked finite.
    private static func matrix(_ file: SafeTensorsFile, _ name: String, shape: [Int], rows: Int, cols: Int,
                               path: String, index: (Int, Int) -> Int) throws -> OwnedMatrix {
        guard let t = file.tensor(named: name) else { throw FeatureError.missingTensor(path: path, name: name) }
        guard t.shape == shape else { throw FeatureError.tensorShape(path: path, name: name, expected: shape, found: t.shape) }
        let type: GGMLType
        switch t.dtype {
        case .f32: type = .f32
        case .f16: type = .f16
        case .bf16: type = .bf16
        default: throw FeatureError.tensorType(path: path, name: name, expected: "F32, F16 or BF16", found: t.dtype.rawValue)
        }
        let raw = file.data(for: t)
        let size = t.dtype.byteSize
        guard raw.count == t.elementCount * size else {
            throw FeatureError.tensorShape(path: path, name: name, expected: shape, found: [raw.count / max(size, 1)])
        }
        // Infinity and NaN: every exponent bit set.
        let exponentMask: UInt32 = switch type { case .f32: 0x7F80_0000; case .f16: 0x7C00; default: 0x7F80 }
        for k in 0..<t.elementCount {
            let bits = size == 4 ? UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * k, as: UInt32.self))
                                 : UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * k, as: UInt16.self)))
            if bits & exponentMask == exponentMask { throw FeatureError.nonFinite(path: path, name: name, index: k) }
        }
        return try OwnedMatrix(type: type, rows: rows, cols: cols) { dst in
            // Copied element by element (little-endian in the file and in memory on our targets);
            // for W_enc this is the transpose, done in tiles that stay in cache.
            let tile = 64
            for i0 in stride(from: 0, to: rows, by: tile) {
                for j0 in stride(from: 0, to: cols, by: tile) {
                    for i in i0..<min(i0 + tile, rows) {
                        for j in j0..<min(j0 + tile, cols) {
                            let from = index(i, j) * size, to = (i * cols + j) * size
                            if size == 4 {
                                dst.storeBytes(of: raw.loadUnaligned(fromByteOffset: from, as: UInt32.self), toByteOffset: to, as: UInt32.self)
                            } else {
                                dst.storeBytes(of: raw.loadUnaligned(fromByteOffset: from, as: UInt16.self), toByteOffset: to, as: UInt16.self)
                            }
                        }
                    }
                }
            }
        }
    }
}
