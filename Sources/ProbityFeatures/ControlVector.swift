// llama.cpp control vectors: a GGUF whose tensors are 1-D F32 `direction.N` (N ≥ 1), each added to
// the output of block N (`blocks.N.hook_resid_post`) times a strength, as common_control_vector_load
// and build_cvec do. Metadata `general.architecture = controlvector`, `controlvector.model_hint`,
// `controlvector.layer_count` as llama.cpp's cvector-generator and repeng write them.

import Foundation
import ProbityFormats
import ProbityLM

/// A set of per-block steering directions in llama.cpp's control-vector format.
public struct ControlVector: Sendable, Equatable {
    /// Architecture the vectors were made for (`controlvector.model_hint`), if the file says.
    public var modelHint: String?
    /// Floats per direction (the model width).
    public var width: Int
    /// Block N → direction added at `blocks.N.hook_resid_post`. N ≥ 1.
    public var directions: [Int: [Float]]

    /// Vectors by block; each must have `width` floats.
    public init(modelHint: String?, width: Int, directions: [Int: [Float]]) {
        self.modelHint = modelHint
        self.width = width
        self.directions = directions
    }

    /// Reads a control-vector GGUF, with llama.cpp's checks: every tensor is `direction.N` with
    /// N ≥ 1, F32, 1-D, and all have the same length.
    public static func load(path: String) throws -> ControlVector {
        let file = try GGUFFile(path: path)
        var directions: [Int: [Float]] = [:]
        var width: Int?
        for t in file.tensors {
            let parts = t.name.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] == "direction", let layer = Int(parts[1]), layer >= 0,
                  String(layer) == parts[1] else {
                throw FeatureError.controlVectorTensorName(path: path, name: t.name)
            }
            guard layer != 0 else { throw FeatureError.controlVectorLayerZero(path: path) }
            guard t.type == .f32 else { throw FeatureError.controlVectorTensorType(path: path, name: t.name, found: t.type.name) }
            guard t.shape.count == 1 else { throw FeatureError.controlVectorShape(path: path, name: t.name, found: t.shape) }
            let n = t.shape[0]
            if let w = width, w != n {
                throw FeatureError.controlVectorWidth(path: path, name: t.name, expected: w, found: n)
            }
            width = n
            let raw = file.data(for: t)
            var v = [Float](repeating: 0, count: n)
            for i in 0..<n {
                v[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            }
            if let bad = v.firstIndex(where: { !$0.isFinite }) {
                throw FeatureError.nonFinite(path: path, name: t.name, index: bad)
            }
            directions[layer] = v
        }
        guard let width else { throw FeatureError.controlVectorEmpty(path: path) }
        return ControlVector(modelHint: file.value("controlvector.model_hint")?.stringValue, width: width, directions: directions)
    }

    /// Writes the vectors as a control-vector GGUF that llama.cpp and repeng read.
    public func write(to path: String) throws {
        var w = GGUFWriter(name: path)
        try w.set("general.architecture", .string("controlvector"))
        try w.set("controlvector.model_hint", .string(modelHint ?? "llama"))
        try w.set("controlvector.layer_count", .int32(Int32(clamping: directions.count)))
        for layer in directions.keys.sorted() {
            guard let v = directions[layer] else { continue }
            try w.addTensor(name: "direction.\(layer)", shape: [v.count], floats: v)
        }
        try w.write(to: path)
    }

    /// The vectors as named directions at `blocks.N.hook_resid_post`.
    public func namedDirections(prefix: String = "direction") -> [Direction] {
        directions.keys.sorted().compactMap { layer in
            directions[layer].map { Direction(name: "\(prefix).\(layer)", point: .residPost(layer), vector: $0) }
        }
    }

    /// The interventions that apply this control vector with `strength`, as llama.cpp does: add
    /// strength × direction.N at the output of block N, at every position.
    public func interventions(strength: Float, name: String = "direction") -> [Intervention] {
        namedDirections(prefix: name).map { Intervention(.direction($0), .add(strength)) }
    }

    /// Checks the vectors fit a model: the width matches and every layer is a block (1 ..< blocks).
    public func validate(for model: ModelInfo, path: String) throws {
        guard width == model.width else {
            throw FeatureError.controlVectorWidth(path: path, name: "direction.\(directions.keys.min() ?? 1)",
                                                  expected: model.width, found: width)
        }
        for layer in directions.keys.sorted() where layer >= model.blockCount {
            throw FeatureError.controlVectorLayer(path: path, layer: layer, blocks: model.blockCount)
        }
    }

    /// Directions at `blocks.N.hook_resid_post` (N ≥ 1) gathered into one control vector; other hook
    /// points have no place in the format.
    public init(directions list: [Direction], modelHint: String?) throws {
        var dirs: [Int: [Float]] = [:]
        var width: Int?
        for d in list {
            guard case .residPost(let layer) = d.point, layer >= 1 else {
                throw FeatureError.badAction(argument: d.name, reason: "a control vector holds directions at blocks.N.hook_resid_post with N ≥ 1, not \(d.point.name)")
            }
            if let w = width, w != d.vector.count {
                throw FeatureError.directionWidth(name: d.name, expected: w, found: d.vector.count)
            }
            width = d.vector.count
            // Two directions at one block add up, as llama.cpp sums vectors loaded together.
            if let old = dirs[layer] {
                dirs[layer] = zip(old, d.vector).map { $0 + $1 }
            } else {
                dirs[layer] = d.vector
            }
        }
        guard let width else { throw FeatureError.controlVectorEmpty(path: "<directions>") }
        self.init(modelHint: modelHint, width: width, directions: dirs)
    }

    /// Parses llama.cpp's `--control-vector FILE[:SCALE]` argument (scale 1 when absent).
    public static func parseArgument(_ arg: String) throws -> (path: String, strength: Float) {
        if let colon = arg.lastIndex(of: ":"), let s = Float(arg[arg.index(after: colon)...]) {
            guard s.isFinite else { throw FeatureError.controlVectorArgument(arg) }
            let path = String(arg[..<colon])
            guard !path.isEmpty else { throw FeatureError.controlVectorArgument(arg) }
            return (path, s)
        }
        guard !arg.isEmpty else { throw FeatureError.controlVectorArgument(arg) }
        return (arg, 1)
    }
}
