// Writes LoRA adapters in llama.cpp's GGUF layout, as convert_lora_to_gguf.py does: the adapter
// metadata, then per adapted tensor T the pair T.lora_a ([inputs, rank]) and T.lora_b ([rank, outputs]).

import ProbityTensor

/// One adapted base tensor's factors in math order, row-major: `a` is rank × inputs, `b` is
/// outputs × rank, so the base matrix W (outputs × inputs) gains scale · B·A.
public struct LoRAFactors: Sendable, Equatable {
    /// The base tensor's name, e.g. `blk.3.attn_q.weight`.
    public var target: String
    public var rank: Int
    public var inputs: Int
    public var outputs: Int
    public var a: [Float]
    public var b: [Float]

    public init(target: String, rank: Int, inputs: Int, outputs: Int, a: [Float], b: [Float]) {
        self.target = target
        self.rank = rank
        self.inputs = inputs
        self.outputs = outputs
        self.a = a
        self.b = b
    }
}

extension GGUFWriter {
    /// A LoRA adapter for a base model of `architecture`: `general.type = adapter`,
    /// `adapter.type = lora`, `adapter.lora.alpha`, and each factor pair stored as `type`
    /// (F32, F16 or BF16; convert_lora_to_gguf.py writes F16 by default).
    /// - Throws: `FormatError.badAdapter` when a pair's arrays do not match its rank and sizes.
    public static func loraAdapter(
        architecture: String, alpha: Float, factors: [LoRAFactors], type: GGMLType = .f32,
        name: String = "adapter.gguf"
    ) throws -> GGUFWriter {
        var w = GGUFWriter(name: name)
        try w.set(GGUFKey.fileKind, .string("adapter"))
        try w.set(GGUFKey.architecture, .string(architecture))
        try w.set(GGUFKey.adapterType, .string("lora"))
        try w.set(GGUFKey.adapterLoRAAlpha, .float32(alpha))
        for f in factors {
            guard f.rank >= 1, f.inputs >= 1, f.outputs >= 1,
                  f.a.count == f.rank * f.inputs, f.b.count == f.outputs * f.rank else {
                throw FormatError.badAdapter(
                    path: name, tensor: f.target,
                    expected: "a (\(f.rank) × \(f.inputs)) and b (\(f.outputs) × \(f.rank)) floats",
                    found: "\(f.a.count) and \(f.b.count)")
            }
            try w.addTensor(name: GGUFTensorName.loraA(f.target), type: type, shape: [f.inputs, f.rank],
                            data: try encode(f.a, as: type, name: name))
            try w.addTensor(name: GGUFTensorName.loraB(f.target), type: type, shape: [f.rank, f.outputs],
                            data: try encode(f.b, as: type, name: name))
        }
        return w
    }

    /// Floats as little-endian F32, F16 or BF16 bytes.
    static func encode(_ values: [Float], as type: GGMLType, name: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        switch type {
        case .f32:
            bytes.reserveCapacity(values.count * 4)
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        case .f16, .bf16:
            bytes.reserveCapacity(values.count * 2)
            for v in values {
                let h = type == .f16 ? HalfPrecision.halfBits(v) : HalfPrecision.bfloat16Bits(v)
                withUnsafeBytes(of: h.littleEndian) { bytes.append(contentsOf: $0) }
            }
        default:
            throw FormatError.unsupported(path: name, what: "writing LoRA factors as \(type.name) (expected F32, F16 or BF16)")
        }
        return bytes
    }
}
