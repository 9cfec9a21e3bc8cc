// Vector kernels of the forward pass (SIMD, in CKernels/vec.c), each with a plain float64 twin in
// `Vec.Reference` that the tests hold them to. Formulas follow ggml's ggml_vec_* and rms_norm.
import CKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Vector kernels over raw float buffers of length `n`.
public enum Vec {
    /// The best instruction set level of this CPU (tests call the C kernels at every level).
    private static let level = pk_best_isa()

    /// Σ a[i]·b[i], accumulated in float.
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        pk_dot_f32(level, a, b, n)
    }

    /// out = x / sqrt(mean(x²) + eps) · weight, the sum of squares in double as ggml keeps it.
    /// `out` may be `x`.
    public static func rmsNorm(
        _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, eps: Float, _ n: Int,
        into out: UnsafeMutablePointer<Float>
    ) {
        pk_rms_norm(level, x, weight, eps, n, out)
    }

    /// gate = silu(gate) · up, where silu(g) = g / (1 + exp(-g)).
    public static func siluMul(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, _ n: Int) {
        pk_silu_mul(level, gate, up, n)
    }

    /// gate = gelu(gate) · up, GELU in its tanh form: 0.5·g·(1 + tanh(√(2/π)·(g + 0.044715·g³))).
    public static func geluTanhMul(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, _ n: Int) {
        pk_gelu_tanh_mul(level, gate, up, n)
    }

    /// `siluMul` over a prompt chunk's rows, in pieces across `pool`: each element's result has
    /// the bits of the serial call.
    public static func siluMul(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, _ n: Int,
                               pool: ThreadPool) {
        inPieces(n, pool: pool) { i, k in pk_silu_mul(level, gate + i, up + i, k) }
    }

    /// `geluTanhMul` in pieces across `pool`, each element with the bits of the serial call.
    public static func geluTanhMul(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, _ n: Int,
                                   pool: ThreadPool) {
        inPieces(n, pool: pool) { i, k in pk_gelu_tanh_mul(level, gate + i, up + i, k) }
    }

    /// Calls `body(start, count)` over `0..<n` in one piece per thread (one piece in all when `n`
    /// is too small for the hand-off to pay), pieces a multiple of 16 elements long.
    private static func inPieces(_ n: Int, pool: ThreadPool, _ body: (Int, Int) -> Void) {
        let pieces = n >= 4096 ? pool.threadCount : 1
        let size = ((n + pieces - 1) / pieces + 15) / 16 * 16
        pool.parallelFor(pieces) { p in
            let start = p * size
            if start < n { body(start, min(size, n - start)) }
        }
    }

    /// x += y.
    public static func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) {
        pk_add(level, x, y, n)
    }

    /// y += a·x.
    public static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        pk_axpy(level, a, x, y, n)
    }

    /// x *= a.
    public static func scale(_ x: UnsafeMutablePointer<Float>, _ a: Float, _ n: Int) {
        pk_scale(level, x, a, n)
    }
}

extension Vec {
    /// Plain float64 twins of the kernels: obviously correct and slow, for tests and references.
    public enum Reference {
        /// Σ a[i]·b[i] in double.
        public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Double {
            var s = 0.0
            for i in 0..<n { s += Double(a[i]) * Double(b[i]) }
            return s
        }

        /// x / sqrt(mean(x²) + eps) · weight in double.
        public static func rmsNorm(_ x: [Float], weight: [Float], eps: Float) -> [Double] {
            let meanSquare = x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(x.count)
            let scale = 1 / (meanSquare + Double(eps)).squareRoot()
            return zip(x, weight).map { Double($0) * scale * Double($1) }
        }

        /// gate / (1 + exp(-gate)) · up in double.
        public static func siluMul(_ gate: [Float], _ up: [Float]) -> [Double] {
            zip(gate, up).map { g, u in Double(g) / (1 + exp(-Double(g))) * Double(u) }
        }

        /// gelu_tanh(gate) · up in double, as x / (1 + exp(−2u)): the same function as
        /// 0.5·x·(1 + tanh(u)), without the cancellation in 1 + tanh(u) for negative x.
        public static func geluTanhMul(_ gate: [Float], _ up: [Float]) -> [Double] {
            zip(gate, up).map { g, u in
                let x = Double(g)
                let twiceU = 2 * (2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)
                return x / (1 + exp(-twiceU)) * Double(u)
            }
        }

    }
}
