// A Q8_0 copy of a matrix that bounds each row's product with a vector before it is computed, so
// that a caller needing only some products (an SAE's active latents) computes just the rows that
// can matter, exactly, with the matrix's own kernel. Block layout as ggml's block_q8_0.
import CKernels

/// A Q8_0 copy of a `QuantizedMatrix`, quantized so that for every row r and input x:
/// |product(r) − approx[r]| ≤ bound[r], where product(r) is what `multiply(x, batch: 1, …)` computes
/// for row r (its float rounding included).
public final class ScreeningMatrix: @unchecked Sendable {
    /// The Q8_0 copy (same rows and columns).
    public let copy: OwnedMatrix

    /// Builds the copy, or nil when the matrix cannot be screened (columns not a multiple of 32,
    /// or weights too large for a half-precision block scale).
    /// - Complexity: O(rows · cols), one pass over the matrix.
    public init?(_ m: QuantizedMatrix) {
        guard m.cols % 32 == 0, m.rows > 0 else { return nil }
        let rows = m.rows, cols = m.cols, blocks = cols / 32
        var fits = true
        let built = try? OwnedMatrix(type: .q8_0, rows: rows, cols: cols) { raw in
            var w = [Float](repeating: 0, count: cols)
            let rowBytes = blocks * 34
            for r in 0..<rows {
                w.withUnsafeMutableBufferPointer { m.dequantizeRow(r, into: $0.baseAddress!) }
                for b in 0..<blocks {
                    var amax: Float = 0
                    for j in 0..<32 { amax = max(amax, abs(w[b * 32 + j])) }
                    // The scale: the smallest half ≥ amax / 127, so every |w / d| ≤ 127.
                    let target = amax / 127
                    var h = HalfPrecision.halfBits(target)
                    if Dequantize.halfToFloat(h) < target { h += 1 }
                    let d = Dequantize.halfToFloat(h)
                    guard d.isFinite, amax.isFinite else { fits = false; return }
                    let base = r * rowBytes + b * 34
                    raw.storeBytes(of: h.littleEndian, toByteOffset: base, as: UInt16.self)
                    for j in 0..<32 {
                        let q = d > 0 ? (w[b * 32 + j] / d).rounded(.toNearestOrEven) : 0
                        raw.storeBytes(of: Int8(max(-127, min(127, q))), toByteOffset: base + 2 + j, as: Int8.self)
                    }
                }
            }
        }
        guard fits, let built else { return nil }
        copy = built
        // |w − q·d| ≤ d·(1/2 + 127u) per weight (q rounds w/d, itself rounded); both dots round
        // by at most γ_n·Σ|terms| with Σ|terms| ≤ 127·R each (|w|, |q·d| ≤ 127·d). R itself is
        // computed in float: a relative margin covers its rounding.
        let u = 0x1p-24, n = Double(cols)
        let gamma = n * u / (1 - n * u)
        factor = Float((0.5 + 127 * u + 254 * gamma) * (1 + 1e-4))
    }

    /// bound[r] = factor · R[r] with R[r] = Σ_b d_b · Σ_{j in block b} |x_j|.
    private let factor: Float

    /// approx[r] and bound[r] for every row, across the pool.
    /// - Complexity: one pass over the Q8_0 copy (about 53% of an F16 matrix's bytes).
    public func screen(_ x: UnsafePointer<Float>, approx: UnsafeMutablePointer<Float>, bound: UnsafeMutablePointer<Float>,
                       pool: ThreadPool) {
        let m = copy.matrix
        let blocks = m.cols / 32
        withUnsafeTemporaryAllocation(of: Float.self, capacity: blocks) { xabs in
            for b in 0..<blocks {
                var s: Float = 0
                for j in 0..<32 { s += abs(x[b * 32 + j]) }
                xabs[b] = s
            }
            guard let xa = xabs.baseAddress else { return }
            let isa = pk_best_isa()
            let chunk = max(64, (m.rows + pool.threadCount * 8 - 1) / (pool.threadCount * 8))
            let chunks = (m.rows + chunk - 1) / chunk
            let factor = self.factor
            pool.parallelFor(chunks) { c in
                let r0 = c * chunk, r1 = min(r0 + chunk, m.rows)
                pk_screen_q8_0(isa, m.data, m.rowBytes, r0, r1, m.cols, x, xa, approx + r0, bound + r0)
                for r in r0..<r1 { bound[r] *= factor }
            }
        }
    }
}

extension QuantizedMatrix {
    /// out[r] = Σ_c W[r, c] · x[c] for the rows in `selected` only, each equal bit for bit to
    /// `multiply(x, batch: 1, …)`'s; other entries of `out` are left alone.
    public func multiply(_ x: UnsafePointer<Float>, selected: [Int], into out: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        precondition(selected.allSatisfy { $0 >= 0 && $0 < rows }, "selected row out of range")
        let isa = pk_best_isa()
        let per = 16
        let (type, rowBytes, cols, data) = (self.type.rawValue, self.rowBytes, self.cols, self.data)
        selected.withUnsafeBufferPointer { rs in
            pool.parallelFor((rs.count + per - 1) / per) { c in
                for k in (c * per)..<min(rs.count, (c + 1) * per) {
                    let r = rs[k]
                    pk_gemv(isa, type, data, rowBytes, r, r + 1, cols, x, out + r)
                }
            }
        }
    }
}
