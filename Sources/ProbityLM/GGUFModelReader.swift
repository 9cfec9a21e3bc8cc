// Typed reads of GGUF metadata and weights for architecture loaders: every value is checked
// for presence and type, every tensor for its shape and whether we can compute with its type,
// so a wrong file fails at load with the name, the expected and the found.

import ProbityFormats
import ProbityTensor

/// Typed metadata lookups with errors that name the key and the file.
struct MetadataReader {
    let gguf: GGUFFile
    var path: String { gguf.path }

    init(_ gguf: GGUFFile) { self.gguf = gguf }

    func string(_ key: String) throws -> String {
        guard let v = gguf.value(key) else { throw ModelError.missingMetadata(key: key, path: path) }
        guard let s = v.stringValue else {
            throw ModelError.badMetadata(key: key, expected: "string", found: v.typeName, path: path)
        }
        return s
    }

    func int(_ key: String) throws -> Int {
        guard let v = gguf.value(key) else { throw ModelError.missingMetadata(key: key, path: path) }
        guard let i = v.intValue else {
            throw ModelError.badMetadata(key: key, expected: "an integer", found: v.typeName, path: path)
        }
        return i
    }

    func int(_ key: String, default fallback: Int) throws -> Int {
        gguf.value(key) == nil ? fallback : try int(key)
    }

    func double(_ key: String, default fallback: Double) throws -> Double {
        guard let v = gguf.value(key) else { return fallback }
        guard let d = v.doubleValue, d.isFinite else {
            throw ModelError.badMetadata(key: key, expected: "a finite number", found: v.typeName, path: path)
        }
        return d
    }
}

/// Weight lookups by name with the expected shape (ggml order: the contiguous dimension first).
struct TensorReader {
    let gguf: GGUFFile

    init(_ gguf: GGUFFile) { self.gguf = gguf }

    private func info(_ name: String) throws -> GGUFTensorInfo {
        guard let t = gguf.tensor(named: name) else { throw ModelError.missingTensor(name, path: gguf.path) }
        return t
    }

    /// A (rows × cols) matrix; GGUF stores it with shape [cols, rows].
    func matrix(_ name: String, rows: Int, cols: Int) throws -> QuantizedMatrix {
        let t = try info(name)
        guard t.shape == [cols, rows] else {
            throw ModelError.tensorShape(name, expected: [cols, rows], found: t.shape, path: gguf.path)
        }
        guard Dequantize.isSupported(t.type) else {
            throw ModelError.unsupportedTensorType(name, type: t.type.name,
                                                   supported: Dequantize.supportedTypes.map(\.name), path: gguf.path)
        }
        guard let base = gguf.data(for: t).baseAddress else {
            throw ModelError.missingTensor(name, path: gguf.path)
        }
        return try QuantizedMatrix(type: t.type, rows: rows, cols: cols, data: base)
    }

    /// A vector of `count` values, dequantized to float32.
    func vector(_ name: String, count: Int) throws -> [Float] {
        let t = try info(name)
        guard t.shape == [count] else {
            throw ModelError.tensorShape(name, expected: [count], found: t.shape, path: gguf.path)
        }
        guard Dequantize.isSupported(t.type) else {
            throw ModelError.unsupportedTensorType(name, type: t.type.name,
                                                   supported: Dequantize.supportedTypes.map(\.name), path: gguf.path)
        }
        guard let base = gguf.data(for: t).baseAddress else {
            throw ModelError.missingTensor(name, path: gguf.path)
        }
        var out = [Float](repeating: 0, count: count)
        try out.withUnsafeMutableBufferPointer { dst in
            guard let d = dst.baseAddress else { return }
            try Dequantize.run(t.type, from: base, count: count, into: d)
        }
        return out
    }

    func optionalVector(_ name: String, count: Int) throws -> [Float]? {
        gguf.tensor(named: name) == nil ? nil : try vector(name, count: count)
    }
}
