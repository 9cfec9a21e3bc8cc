// A low-rank update to a weight matrix's product, as a LoRA adapter adds it (llama.cpp
// build_lora_mm): out += scale · B·(A·x), computed as two thin products, never as a full B·A.

/// `scale` · B·A for A (rank × inputs) and B (outputs × rank), both float32 row-major, added to a
/// matrix product already in `out`. Immutable; shared by every session of a model.
public struct LowRankUpdate: Sendable {
    public let rank: Int
    public let inputs: Int
    public let outputs: Int
    public let scale: Float
    /// (rank, inputs)
    public let a: [Float]
    /// (outputs, rank)
    public let b: [Float]
    /// Bᵀ: (rank, outputs), so both products read rows.
    private let bt: [Float]

    public init(a: [Float], b: [Float], rank: Int, inputs: Int, outputs: Int, scale: Float) throws {
        guard rank >= 1, inputs >= 1, outputs >= 1, a.count == rank * inputs, b.count == outputs * rank else {
            throw TensorError.invalidShape(rows: outputs, cols: inputs,
                                           context: "low-rank update of rank \(rank) with \(a.count) + \(b.count) floats")
        }
        self.a = a
        self.b = b
        var bt = [Float](repeating: 0, count: b.count)
        for o in 0..<outputs {
            for r in 0..<rank { bt[r * outputs + o] = b[o * rank + r] }
        }
        self.bt = bt
        self.rank = rank
        self.inputs = inputs
        self.outputs = outputs
        self.scale = scale
    }

    /// out[i] += scale · B·(A·x[i]) for each of the `batch` rows of x (batch × inputs) and out
    /// (batch × outputs), both row-major: t = x·Aᵀ (batch × rank), then out += scale · t·Bᵀ.
    /// One row (decode) is rank dot products and rank axpys; more rows are two OpenBLAS products.
    /// - Complexity: O(batch · rank · (inputs + outputs)); single-threaded.
    public func apply(_ x: UnsafePointer<Float>, batch: Int, into out: UnsafeMutablePointer<Float>) {
        guard batch > 0 else { return }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: batch * rank) { t in
            guard let tp = t.baseAddress else { return }
            a.withUnsafeBufferPointer { ap in
                bt.withUnsafeBufferPointer { bp in
                    guard let ap = ap.baseAddress, let bp = bp.baseAddress else { return }
                    if batch == 1 {
                        // A library call per product costs more than these few thousand multiply-adds.
                        for r in 0..<rank { tp[r] = Vec.dot(ap + r * inputs, x, inputs) }
                        for r in 0..<rank { Vec.axpy(scale * tp[r], bp + r * outputs, out, outputs) }
                        return
                    }
                    BLAS.sgemm(m: batch, n: rank, k: inputs, a: x, lda: inputs,
                               b: ap, ldb: inputs, transposeB: true, c: tp, ldc: rank)
                    BLAS.sgemm(m: batch, n: outputs, k: rank, alpha: scale, a: tp, lda: rank,
                               b: bp, ldb: outputs, beta: 1, c: out, ldc: outputs)
                }
            }
        }
    }
}
