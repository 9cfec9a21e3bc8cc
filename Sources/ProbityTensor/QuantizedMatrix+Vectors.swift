// Decode of several sequences in one product: every vector's result has the bits the
// single-vector product (`multiply(x, batch: 1, …)`, pk_gemv) gives it alone, while the weights
// stream from memory once for all of them (CKernels pk_gemv_multi). Prefill's panel products are
// faster at large batches but sum in another order, so decode never uses them.
import CKernels

extension QuantizedMatrix {
    /// out[b · ldo + r] = Σ_c W[r, c] · x[b · ldx + c] for b < `vectors`, r in `rowRange` (all rows
    /// when nil), each equal bit for bit to `multiply(x_b, batch: 1, …)`.
    public func multiplyVectors(
        _ x: UnsafePointer<Float>, vectors: Int, stride ldx: Int, rows rowRange: Range<Int>? = nil,
        into out: UnsafeMutablePointer<Float>, outStride ldo: Int, pool: ThreadPool
    ) {
        multiplyVectors(x, vectors: vectors, stride: ldx, rows: rowRange, into: out, outStride: ldo, pool: pool,
                        isa: pk_best_isa())
    }

    /// `multiplyVectors` at a chosen instruction set level (tests hold every level to pk_gemv).
    func multiplyVectors(
        _ x: UnsafePointer<Float>, vectors: Int, stride ldx: Int, rows rowRange: Range<Int>?,
        into out: UnsafeMutablePointer<Float>, outStride ldo: Int, pool: ThreadPool, isa: Int32
    ) {
        let range = rowRange ?? 0..<rows
        precondition(vectors >= 0 && ldx >= cols && ldo >= 1 && range.lowerBound >= 0 && range.upperBound <= rows,
                     "bad multiplyVectors call")
        guard vectors > 0, !range.isEmpty else { return }
        let (type, rowBytes, cols, data) = (self.type.rawValue, self.rowBytes, self.cols, self.data)
        Self.forEachRowChunk(range, pool: pool) { r0, r1 in
            pk_gemv_multi(isa, type, data, rowBytes, r0, r1, cols, x, ldx, vectors, out, ldo)
        }
    }
}

extension MatrixGroup {
    /// outs[i][b · matrices[i].rows + r] = Σ_c matrices[i][r, c] · x[b · cols + c] for the
    /// `vectors` rows of x, each equal bit for bit to `multiply(x_b, into:, pool:)`; one pool dispatch.
    public func multiplyVectors(_ x: UnsafePointer<Float>, vectors: Int, into outs: [UnsafeMutablePointer<Float>],
                                pool: ThreadPool) {
        guard vectors > 0 else { return }
        let isa = pk_best_isa()
        forEachItem(outs, pool: pool) { w, r0, r1, out in
            pk_gemv_multi(isa, w.type.rawValue, w.data, w.rowBytes, r0, r1, w.cols, x, w.cols, vectors, out, w.rows)
        }
    }
}
