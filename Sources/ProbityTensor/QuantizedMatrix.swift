// A weight matrix kept as raw ggml blocks and multiplied without a float copy: decode reads the
// blocks directly (dequantizing in registers); prefill dequantizes rows once into per-thread
// scratch and reuses them across the whole batch (our AVX-512 panel kernel, else OpenBLAS sgemm).
import CKernels
import COpenBLAS

/// A weight matrix of `rows` × `cols` stored as raw ggml blocks, row-major: row r holds `cols`
/// elements starting at `data + r * rowBytes`. A GGUF tensor of shape [cols, rows] (ggml order).
/// The memory at `data` must outlive the matrix (it is usually a mapped file).
public struct QuantizedMatrix: @unchecked Sendable {
    public let type: GGMLType
    public let rows: Int
    public let cols: Int
    /// Bytes per row: `cols / type.blockSize * type.bytesPerBlock`.
    public let rowBytes: Int
    public let data: UnsafeRawPointer

    /// Batches at least this large go through dequantized panels or tiles (multiplyTiles).
    public static let gemmMinBatch = 16

    /// - Throws: `TensorError.unsupportedType` for types without kernels, `.partialBlock` when
    ///   `cols` is not a whole number of blocks, `.invalidShape` for negative or huge shapes.
    public init(type: GGMLType, rows: Int, cols: Int, data: UnsafeRawPointer) throws {
        let context = "matrix \(rows)×\(cols) \(type.name)"
        guard Dequantize.isSupported(type) else { throw TensorError.unsupportedType(type, context: context) }
        guard rows >= 0, cols >= 0, rows <= Int(Int32.max), cols <= Int(Int32.max) else {
            throw TensorError.invalidShape(rows: rows, cols: cols, context: context)
        }
        guard let rowBytes = type.byteCount(elements: cols) else {
            throw TensorError.partialBlock(type, elements: cols, context: context)
        }
        guard !rowBytes.multipliedReportingOverflow(by: rows).overflow else {
            throw TensorError.invalidShape(rows: rows, cols: cols, context: context)
        }
        self.type = type
        self.rows = rows
        self.cols = cols
        self.rowBytes = rowBytes
        self.data = data
    }

    /// Bytes the matrix occupies.
    public var byteCount: Int { rows * rowBytes }

    /// Rows `range` as a matrix of their own over the same memory (a fused tensor's parts, e.g.
    /// Phi-3's `attn_qkv`). `range` must lie within `0..<rows`.
    public func rows(_ range: Range<Int>) throws -> QuantizedMatrix {
        guard range.lowerBound >= 0, range.upperBound <= rows else {
            throw TensorError.invalidShape(rows: range.upperBound, cols: cols,
                                           context: "rows \(range) of a \(rows)×\(cols) \(type.name) matrix")
        }
        return try QuantizedMatrix(type: type, rows: range.count, cols: cols, data: data + range.lowerBound * rowBytes)
    }

    /// Writes row `r` as `cols` floats.
    public func dequantizeRow(_ r: Int, into dst: UnsafeMutablePointer<Float>) {
        precondition(r >= 0 && r < rows, "row \(r) out of 0..<\(rows)")
        _ = pk_dequantize(pk_best_isa(), type.rawValue, data + r * rowBytes, cols, dst)
    }

    /// out[b * rows + r] = Σ_c W[r, c] · x[b * cols + c] for b in 0..<batch, r in 0..<rows.
    public func multiply(
        _ x: UnsafePointer<Float>, batch: Int, into out: UnsafeMutablePointer<Float>, pool: ThreadPool
    ) {
        multiply(x, batch: batch, rows: 0..<rows, into: out, pool: pool)
    }

    /// The same restricted to rows in `rowRange` (out still indexed b * rows + r), so a caller can
    /// compute part of a large output head.
    public func multiply(
        _ x: UnsafePointer<Float>, batch: Int, rows rowRange: Range<Int>,
        into out: UnsafeMutablePointer<Float>, pool: ThreadPool
    ) {
        multiply(x, batch: batch, rows: rowRange, into: out, pool: pool, isa: pk_best_isa())
    }

    /// `multiply` at a chosen instruction set level (tests hold every level to the reference).
    func multiply(
        _ x: UnsafePointer<Float>, batch: Int, rows rowRange: Range<Int>,
        into out: UnsafeMutablePointer<Float>, pool: ThreadPool, isa: Int32
    ) {
        precondition(batch >= 0 && rowRange.lowerBound >= 0 && rowRange.upperBound <= rows, "bad multiply range")
        guard batch > 0, !rowRange.isEmpty else { return }
        if batch >= Self.gemmMinBatch {
            multiplyTiles(x, batch: batch, rows: rowRange, into: out, pool: pool, isa: isa)
        } else {
            multiplyRows(x, batch: batch, rows: rowRange, into: out, pool: pool, isa: isa)
        }
    }

    /// Calls body(r0, r1) across the pool for chunks of `range`: enough chunks to balance threads
    /// that run at uneven speeds, few enough to stay cheap. Row products are independent, so any
    /// chunking gives the same bits.
    static func forEachRowChunk(_ range: Range<Int>, pool: ThreadPool, _ body: (Int, Int) -> Void) {
        let count = range.count
        let chunk = max(8, (count + pool.threadCount * 8 - 1) / (pool.threadCount * 8))
        pool.parallelFor((count + chunk - 1) / chunk) { c in
            let r0 = range.lowerBound + c * chunk
            body(r0, min(r0 + chunk, range.upperBound))
        }
    }

    /// Row chunks across the pool; each row is read once for the whole (small) batch.
    private func multiplyRows(
        _ x: UnsafePointer<Float>, batch: Int, rows rowRange: Range<Int>,
        into out: UnsafeMutablePointer<Float>, pool: ThreadPool, isa: Int32
    ) {
        let (type, rowBytes, cols, data, rows) = (self.type.rawValue, self.rowBytes, self.cols, self.data, self.rows)
        Self.forEachRowChunk(rowRange, pool: pool) { r0, r1 in
            if batch == 1 {
                pk_gemv(isa, type, data, rowBytes, r0, r1, cols, x, out + r0)
            } else {
                pk_gemv_batch(isa, type, data, rowBytes, r0, r1, cols, x, batch, out, rows)
            }
        }
    }

    /// Batched products. With AVX-512, panels of 64 rows dequantized once per work item and swept
    /// by our register-tiled kernel; otherwise tiles of rows dequantized into per-thread scratch
    /// and multiplied by the whole batch with single-threaded OpenBLAS sgemm: out[:, tile] = X · tileᵀ.
    private func multiplyTiles(
        _ x: UnsafePointer<Float>, batch: Int, rows rowRange: Range<Int>,
        into out: UnsafeMutablePointer<Float>, pool: ThreadPool, isa: Int32
    ) {
        let count = rowRange.count
        let (type, rowBytes, cols, data, rows) = (self.type.rawValue, self.rowBytes, self.cols, self.data, self.rows)
        if pk_has_gemm_panel(isa) != 0 {
            // Work items are (panel, batch slice) pairs. Each item dequantizes its panel again, so
            // the batch is sliced only as far as needed to give every thread several items.
            let panels = (count + 63) / 64
            let wanted = max(1, (8 * pool.threadCount + panels - 1) / panels)
            let slice = min(batch, max(48, ((batch + wanted - 1) / wanted + 5) / 6 * 6))
            let slices = (batch + slice - 1) / slice
            pool.parallelFor(panels * slices) { item in
                let r0 = rowRange.lowerBound + (item / slices) * 64
                let b0 = (item % slices) * slice
                _ = pk_gemm_panel(
                    isa, type, data, rowBytes, r0, min(r0 + 64, rowRange.upperBound), cols, x,
                    b0, min(b0 + slice, batch), out, rows)
            }
            return
        }
        // A tile of about 64K floats (256 KB) stays in L2 while sgemm streams the batch past it.
        let tile = min(count, max(16, (65536 / max(cols, 1)) & ~15))
        let tiles = (count + tile - 1) / tile
        pool.parallelFor(tiles) { t in
            let r0 = rowRange.lowerBound + t * tile
            let n = min(tile, rowRange.upperBound - r0)
            guard let scratch = pk_thread_scratch(n * cols) else {
                preconditionFailure("out of memory for a \(n)×\(cols) weight tile")
            }
            _ = pk_dequantize(isa, type, data + r0 * rowBytes, n * cols, scratch)
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasTrans, blasint(batch), blasint(n), blasint(cols),
                1, x, blasint(cols), scratch, blasint(cols), 0, out + r0, blasint(rows))
        }
    }
}

extension QuantizedMatrix {
    /// Several single-vector products of one input as one job for the pool:
    /// outs[i][r] = Σ_c matrices[i][r, c] · x[c]. Each result equals `multiply(x, batch: 1, …)`
    /// bit for bit. A caller that repeats it for the same matrices keeps a `MatrixGroup` instead.
    public static func multiplyEach(
        _ matrices: [QuantizedMatrix], _ x: UnsafePointer<Float>,
        into outs: [UnsafeMutablePointer<Float>], pool: ThreadPool
    ) {
        MatrixGroup(matrices, threads: pool.threadCount).multiply(x, into: outs, pool: pool)
    }
}

/// Matrices that share an input width, multiplied by one vector in one pool dispatch (decode's
/// q/k/v and gate/up). The work items are worked out once, so a product allocates nothing.
public final class MatrixGroup: @unchecked Sendable {
    public let matrices: [QuantizedMatrix]
    /// Work items: (matrix, first row, end row), chunked per matrix so an item never spans two.
    let items: [(matrix: Int, r0: Int, r1: Int)]
    /// The thread count the items were sized for.
    public let threads: Int

    /// Sizes the work items for a pool of `threads` threads (any pool gives the same results).
    public init(_ matrices: [QuantizedMatrix], threads: Int) {
        precondition(matrices.allSatisfy { $0.cols == matrices.first?.cols }, "matrices share the input width")
        let total = matrices.reduce(0) { $0 + $1.rows }
        let t = max(threads, 1)
        // Enough chunks to balance threads that run at uneven speeds, few enough to stay cheap.
        let chunk = max(8, (total + t * 8 - 1) / (t * 8))
        var items: [(matrix: Int, r0: Int, r1: Int)] = []
        for (m, w) in matrices.enumerated() {
            var r = 0
            while r < w.rows { items.append((m, r, min(r + chunk, w.rows))); r += chunk }
        }
        self.matrices = matrices
        self.items = items
        self.threads = t
    }

    /// outs[i][r] = Σ_c matrices[i][r, c] · x[c], each equal to `multiply(x, batch: 1, …)` bit for bit.
    public func multiply(_ x: UnsafePointer<Float>, into outs: [UnsafeMutablePointer<Float>], pool: ThreadPool) {
        let isa = pk_best_isa()
        forEachItem(outs, pool: pool) { w, r0, r1, out in
            pk_gemv(isa, w.type.rawValue, w.data, w.rowBytes, r0, r1, w.cols, x, out + r0)
        }
    }

    /// Calls body(matrix, r0, r1, its output) for every work item, in one pool dispatch.
    func forEachItem(_ outs: [UnsafeMutablePointer<Float>], pool: ThreadPool,
                     _ body: (QuantizedMatrix, Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        precondition(matrices.count == outs.count, "one output per matrix")
        items.withUnsafeBufferPointer { work in
            matrices.withUnsafeBufferPointer { ms in
                outs.withUnsafeBufferPointer { os in
                    pool.parallelFor(work.count) { i in
                        let (m, r0, r1) = work[i]
                        body(ms[m], r0, r1, os[m])
                    }
                }
            }
        }
    }
}
