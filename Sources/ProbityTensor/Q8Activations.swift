// The opt-in 8-bit activation mode (DESIGN.md, "Numerics"): decode's products take their input
// quantized to blocks of 32 bytes with a float scale each, as llama.cpp quantizes activations, and
// sum exact integer block products (CKernels q8.c). About 1e-2 from the exact result; never the
// default, and every command that offers it says when it was used.
import CKernels

/// How a model's single-vector products (decode) take their input.
public enum ActivationPrecision: String, Sendable, CaseIterable, Codable {
    /// float32 on exactly dequantized weights: the default, within 2e-3 of float64.
    case f32
    /// 8-bit activations for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q4_K weights (others stay float32), as llama.cpp computes.
    case q8

    /// Whether a matrix of `type` takes 8-bit inputs in this mode.
    public func quantizes(_ type: GGMLType) -> Bool { self == .q8 && pk_q8_supported(type.rawValue) != 0 }
}

/// Room for quantized input vectors of up to `maxCols` elements (a multiple of 32), one slot each.
public final class Q8Vectors: @unchecked Sendable {
    public let maxCols: Int
    public let slots: Int
    private let slotBytes: Int
    private let storage: UnsafeMutableRawPointer

    public init(maxCols: Int, slots: Int = 1) {
        precondition(maxCols >= 0 && maxCols % 32 == 0 && slots >= 1, "q8 vectors hold whole blocks")
        self.maxCols = maxCols
        self.slots = slots
        slotBytes = (pk_q8_bytes(maxCols) + 63) & ~63
        storage = UnsafeMutableRawPointer.allocate(byteCount: max(slotBytes * slots, 64), alignment: 64)
    }

    deinit { storage.deallocate() }

    /// Quantizes `cols` floats at `x` into `slot` and returns it.
    @discardableResult
    public func quantize(_ x: UnsafePointer<Float>, cols: Int, slot: Int = 0) -> UnsafeRawPointer {
        precondition(cols <= maxCols && cols % 32 == 0 && slot >= 0 && slot < slots, "q8 slot too small")
        let p = storage + slot * slotBytes
        pk_quantize_q8(x, cols, p)
        return UnsafeRawPointer(p)
    }

    /// Bytes from one slot to the next.
    public var stride: Int { slotBytes }

    /// Quantizes `vectors` rows of `cols` floats at x + i · ldx into slots 0..<vectors.
    public func quantize(_ x: UnsafePointer<Float>, vectors: Int, stride ldx: Int, cols: Int) {
        precondition(vectors <= slots, "\(vectors) vectors for \(slots) q8 slots")
        for i in 0..<vectors { quantize(x + i * ldx, cols: cols, slot: i) }
    }

    /// Slot `slot`, as last quantized.
    public func slot(_ slot: Int) -> UnsafeRawPointer {
        precondition(slot >= 0 && slot < slots, "q8 slot out of range")
        return UnsafeRawPointer(storage + slot * slotBytes)
    }
}

extension QuantizedMatrix {
    /// Whether this matrix takes 8-bit inputs (its type has q8 kernels).
    public var takesQ8: Bool { pk_q8_supported(type.rawValue) != 0 }

    /// out[r] = Σ_b (row r's block b) · (block b of the quantized input `q8`), for every row; the
    /// matrix's type must take 8-bit inputs (`takesQ8`).
    public func multiply(q8: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        multiply(q8: q8, into: out, pool: pool, isa: pk_best_isa())
    }

    /// The same at a chosen instruction set level (tests compare the levels).
    func multiply(q8: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>, pool: ThreadPool, isa: Int32) {
        precondition(takesQ8, "\(type.name) has no 8-bit activation kernel")
        guard rows > 0 else { return }
        let (type, rowBytes, cols, data) = (self.type.rawValue, self.rowBytes, self.cols, self.data)
        Self.forEachRowChunk(0..<rows, pool: pool) { r0, r1 in
            pk_gemv_q8(isa, type, data, rowBytes, r0, r1, cols, q8, out + r0)
        }
    }

    /// `multiply(x, batch:, into:, pool:)` with a single row (decode) in `precision`: through the
    /// 8-bit kernels when this matrix takes them and `vectors` has room (x quantized into its first
    /// slot), else in float32 as batches always are.
    public func multiply(
        _ x: UnsafePointer<Float>, batch: Int, precision: ActivationPrecision, vectors: Q8Vectors?,
        into out: UnsafeMutablePointer<Float>, pool: ThreadPool
    ) {
        if batch == 1, precision == .q8, takesQ8, let vectors {
            multiply(q8: vectors.quantize(x, cols: cols), into: out, pool: pool)
        } else {
            multiply(x, batch: batch, into: out, pool: pool)
        }
    }
}

extension QuantizedMatrix {
    /// `multiplyVectors(x, vectors:, stride:, into:, outStride:, pool:)` in `precision`: through the
    /// 8-bit kernels when this matrix takes them (x's rows quantized into `q8`'s first slots), each
    /// vector's result with the bits of its own single-vector product in that precision.
    public func multiplyVectors(
        _ x: UnsafePointer<Float>, vectors: Int, stride ldx: Int, precision: ActivationPrecision, q8: Q8Vectors?,
        into out: UnsafeMutablePointer<Float>, outStride ldo: Int, pool: ThreadPool
    ) {
        guard precision == .q8, takesQ8, let q8 else {
            multiplyVectors(x, vectors: vectors, stride: ldx, into: out, outStride: ldo, pool: pool)
            return
        }
        guard vectors > 0, rows > 0 else { return }
        q8.quantize(x, vectors: vectors, stride: ldx, cols: cols)
        let (type, rowBytes, cols, data) = (self.type.rawValue, self.rowBytes, self.cols, self.data)
        let (base, stride, isa) = (q8.slot(0), q8.stride, pk_best_isa())
        Self.forEachRowChunk(0..<rows, pool: pool) { r0, r1 in
            pk_gemv_q8_multi(isa, type, data, rowBytes, r0, r1, cols, base, stride, vectors, out, ldo)
        }
    }
}

extension MatrixGroup {
    /// `multiplyVectors(x, vectors:, into:, pool:)` in `precision`: matrices that take 8-bit inputs
    /// read x's rows quantized once into `q8`'s first slots, the others the float rows; each result
    /// has the bits of its vector's single product in that precision. One pool dispatch.
    public func multiplyVectors(
        _ x: UnsafePointer<Float>, vectors: Int, precision: ActivationPrecision, q8: Q8Vectors?,
        into outs: [UnsafeMutablePointer<Float>], pool: ThreadPool
    ) {
        guard precision == .q8, let q8, matrices.contains(where: \.takesQ8) else {
            multiplyVectors(x, vectors: vectors, into: outs, pool: pool)
            return
        }
        guard vectors > 0 else { return }
        let cols = matrices.first?.cols ?? 0
        q8.quantize(x, vectors: vectors, stride: cols, cols: cols)
        let (base, stride, isa) = (q8.slot(0), q8.stride, pk_best_isa())
        forEachItem(outs, pool: pool) { w, r0, r1, out in
            if w.takesQ8 {
                pk_gemv_q8_multi(isa, w.type.rawValue, w.data, w.rowBytes, r0, r1, w.cols, base, stride, vectors, out,
                                 w.rows)
            } else {
                pk_gemv_multi(isa, w.type.rawValue, w.data, w.rowBytes, r0, r1, w.cols, x, w.cols, vectors, out, w.rows)
            }
        }
    }
}

extension MatrixGroup {
    /// outs[i] = matrices[i] · x in `precision`: matrices that take 8-bit inputs read x quantized
    /// once into `vectors`' first slot, the others the float x; one pool dispatch.
    public func multiply(
        _ x: UnsafePointer<Float>, precision: ActivationPrecision, vectors: Q8Vectors?,
        into outs: [UnsafeMutablePointer<Float>], pool: ThreadPool
    ) {
        guard precision == .q8, let vectors, matrices.contains(where: \.takesQ8) else {
            multiply(x, into: outs, pool: pool)
            return
        }
        let cols = matrices.first?.cols ?? 0
        let q8 = vectors.quantize(x, cols: cols)
        let isa = pk_best_isa()
        forEachItem(outs, pool: pool) { w, r0, r1, out in
            if w.takesQ8 {
                pk_gemv_q8(isa, w.type.rawValue, w.data, w.rowBytes, r0, r1, w.cols, q8, out + r0)
            } else {
                pk_gemv(isa, w.type.rawValue, w.data, w.rowBytes, r0, r1, w.cols, x, out + r0)
            }
        }
    }
}
