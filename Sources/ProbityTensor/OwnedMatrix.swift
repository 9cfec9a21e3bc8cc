// A weight matrix built in memory (not mapped from a file) and multiplied by the same kernels as
// the model's: SAE weights kept in their stored F32, F16 or BF16, rows laid out for row dots.

/// A `QuantizedMatrix` over memory this object owns and frees. Rows are 64-byte aligned as a whole
/// (the buffer), packed one after another.
public final class OwnedMatrix: @unchecked Sendable {
    /// The matrix; valid while this object lives.
    public let matrix: QuantizedMatrix
    private let storage: UnsafeMutableRawPointer

    /// Allocates `rows` × `cols` elements of `type` (zeroed) and lets `fill` write them, row-major
    /// (`matrix.rowBytes` per row).
    /// - Throws: what `QuantizedMatrix.init` throws for the shape and type, or what `fill` throws.
    public init(type: GGMLType, rows: Int, cols: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws {
        guard let rowBytes = type.byteCount(elements: cols),
              !rowBytes.multipliedReportingOverflow(by: rows).overflow, rows >= 0 else {
            throw TensorError.invalidShape(rows: rows, cols: cols, context: "owned matrix \(rows)×\(cols) \(type.name)")
        }
        let bytes = max(rows * rowBytes, 1)
        let storage = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        do {
            matrix = try QuantizedMatrix(type: type, rows: rows, cols: cols, data: storage)
            try fill(UnsafeMutableRawBufferPointer(start: storage, count: rows * rowBytes))
        } catch {
            storage.deallocate()
            throw error
        }
        self.storage = storage
    }

    deinit { storage.deallocate() }

    /// Row `r` as `cols` floats (exact for F32, F16 and BF16).
    public func row(_ r: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: matrix.cols) { buf, count in
            if let p = buf.baseAddress { matrix.dequantizeRow(r, into: p) }
            count = matrix.cols
        }
    }
}
