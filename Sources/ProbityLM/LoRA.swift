// LoRA adapters attached to a model at load, applied as llama.cpp applies them (build_lora_mm):
// every adapted product W·x gains Σ over adapters of scaleₐ · (alphaₐ / rank) · Bₐ·(Aₐ·x).
// Hooks and features above see only the adapted model's activations.

import ProbityFormats
import ProbityTensor

/// An adapter to attach: a GGUF file (llama.cpp's LoRA layout) and the scale to apply it at
/// (llama.cpp's `--lora-scaled FILE SCALE`; 1 for `--lora FILE`).
public struct AdapterRequest: Sendable, Equatable {
    public var path: String
    public var scale: Float

    public init(path: String, scale: Float = 1) {
        self.path = path
        self.scale = scale
    }

    /// Parses `FILE[:SCALE]` (scale 1 when absent), as `--control-vector` is parsed.
    public static func parse(_ arg: String) throws -> AdapterRequest {
        if let colon = arg.lastIndex(of: ":"), let s = Float(arg[arg.index(after: colon)...]) {
            let path = String(arg[..<colon])
            guard s.isFinite, !path.isEmpty else { throw ModelError.adapterArgument(arg) }
            return AdapterRequest(path: path, scale: s)
        }
        guard !arg.isEmpty else { throw ModelError.adapterArgument(arg) }
        return AdapterRequest(path: arg, scale: 1)
    }
}

/// An adapter attached to a loaded model, as reports describe it.
public struct AttachedAdapter: Sendable, Equatable {
    public var path: String
    public var scale: Float
    public var alpha: Float
    /// The base tensors it adapts, sorted.
    public var targets: [String]
    /// The ranks of its pairs, smallest to largest (usually one value).
    public var ranks: [Int]
}

/// The low-rank updates of all attached adapters by base tensor name, each list in the order the
/// adapters were given. An architecture takes the updates of each matrix it multiplies; a target
/// no matrix took is an error, so no adapter tensor is ever silently ignored.
public struct LoRAUpdates: Sendable {
    private var byTarget: [String: [LowRankUpdate]] = [:]
    /// The adapter file each target first came from (for errors).
    private var source: [String: String] = [:]
    private var taken: Set<String> = []

    /// No adapters: the base model.
    public static let none = LoRAUpdates()

    public var isEmpty: Bool { byTarget.isEmpty }

    init() {}

    /// Validates each adapter against `base` and dequantizes its factors to float32.
    public init(adapters: [(file: LoRAAdapterFile, scale: Float)], base: GGUFFile) throws {
        for (file, scale) in adapters {
            try file.validate(against: base)
            for p in file.pairs {
                let update = try LowRankUpdate(
                    a: try file.floats(p.a), b: try file.floats(p.b), rank: p.rank, inputs: p.inputs,
                    outputs: p.outputs, scale: file.effectiveScale(p, scale: scale))
                byTarget[p.target, default: []].append(update)
                if source[p.target] == nil { source[p.target] = file.path }
            }
        }
    }

    /// The updates to the product with base tensor `name` (empty when none), marked as applied.
    mutating func take(_ name: String) -> [LowRankUpdate] {
        guard let u = byTarget[name] else { return [] }
        taken.insert(name)
        return u
    }

    /// Throws unless every adapted tensor was taken by the architecture `arch`.
    func checkAllTaken(arch: String) throws {
        for name in byTarget.keys.sorted() where !taken.contains(name) {
            throw FormatError.badAdapter(
                path: source[name] ?? "adapter", tensor: GGUFTensorName.loraA(name),
                expected: "a matrix the \(arch) architecture multiplies",
                found: "'\(name)', which it does not")
        }
    }
}

extension Array where Element == LowRankUpdate {
    /// out += Σ scale · B·(A·x) over the updates, for `batch` rows.
    func apply(_ x: UnsafePointer<Float>, batch: Int, into out: UnsafeMutablePointer<Float>) {
        for u in self { u.apply(x, batch: batch, into: out) }
    }
}
