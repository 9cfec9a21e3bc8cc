// Tensor lookups with the shape and types a loader expects, so a wrong file fails at load with
// "tensor blk.3.attn_q.weight: expected shape [576, 576], found [576, 192]" (llama-arch.cpp's idea).

import ProbityTensor

extension GGUFFile {
    /// The tensor `name`; throws unless it exists, has exactly `shape` (ggml order) and, when
    /// `types` is given, one of those types.
    public func requiredTensor(_ name: String, shape: [Int], types: [GGMLType]? = nil) throws -> GGUFTensorInfo {
        guard let t = tensor(named: name) else { throw FormatError.missingTensor(path: path, name: name) }
        return try check(t, shape: shape, types: types)
    }

    /// Like `requiredTensor`, but nil when the file has no tensor `name` (e.g. a tied `output.weight`).
    public func optionalTensor(_ name: String, shape: [Int], types: [GGMLType]? = nil) throws -> GGUFTensorInfo? {
        guard let t = tensor(named: name) else { return nil }
        return try check(t, shape: shape, types: types)
    }

    private func check(_ t: GGUFTensorInfo, shape: [Int], types: [GGMLType]?) throws -> GGUFTensorInfo {
        guard t.shape == shape else {
            throw FormatError.tensorShapeMismatch(path: path, name: t.name, expected: shape, found: t.shape)
        }
        if let types, !types.contains(t.type) {
            throw FormatError.tensorTypeMismatch(path: path, name: t.name, expected: types.map(\.name), found: t.type.name)
        }
        return t
    }
}
