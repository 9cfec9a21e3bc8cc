// Exact dequantization of ggml blocks to float, as ggml's dequantize_row_* defines it
// (ggml-quants.c; layouts in gguf-py quants.py). The kernels live in CKernels.
import CKernels

/// Exact dequantization as ggml defines it: each weight is the float ggml computes for it.
public enum Dequantize {
    /// Whether `type` can be dequantized and multiplied by our kernels.
    public static func isSupported(_ type: GGMLType) -> Bool {
        pk_supported(type.rawValue) != 0
    }

    /// Every type our kernels compute with, in ggml id order.
    public static var supportedTypes: [GGMLType] { GGMLType.allCases.filter(isSupported) }

    /// Converts `count` elements (a multiple of `type.blockSize`) starting at `src` into floats.
    /// - Throws: `TensorError.unsupportedType` for types we cannot compute with,
    ///   `TensorError.partialBlock` when `count` does not fill whole blocks.
    /// - Complexity: O(count); reads `type.byteCount(elements: count)` bytes.
    public static func run(
        _ type: GGMLType, from src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>
    ) throws {
        try run(type, from: src, count: count, into: dst, isa: pk_best_isa())
    }

    /// `run` at a chosen instruction set level (tests check that every level agrees bit for bit).
    static func run(
        _ type: GGMLType, from src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>,
        isa: Int32
    ) throws {
        guard isSupported(type) else { throw TensorError.unsupportedType(type, context: "dequantize") }
        guard count >= 0, count % type.blockSize == 0 else {
            throw TensorError.partialBlock(type, elements: count, context: "dequantize")
        }
        _ = pk_dequantize(isa, type.rawValue, src, count, dst)
    }

    /// Every instruction set level this CPU can run, portable C first.
    static var isaLevels: [Int32] { Array(0...pk_best_isa()) }

    /// The level the kernels run at on this CPU, e.g. "avx2".
    public static var isaName: String {
        switch pk_best_isa() {
        case 2: return "avx512"
        case 1: return "avx2"
        default: return "portable"
        }
    }

    /// IEEE half to float, exact for all 65536 inputs (NaN payloads kept bit for bit).
    public static func halfToFloat(_ bits: UInt16) -> Float { pk_half_to_float(bits) }

    /// bfloat16 to float: the upper half of a float's bits.
    public static func bfloat16ToFloat(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }
}
