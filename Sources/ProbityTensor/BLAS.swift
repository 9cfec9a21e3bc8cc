// A thin wrapper over OpenBLAS's row-major CBLAS sgemm (and dsyrk, for float64 fitting) and its thread count.
// Calls are serialised process-wide: OpenBLAS's thread count is one global setting, so a call on
// one thread while another changes it, or two calls sharing its worker threads, can sum in another
// order than a lone call (an SAE training run's trajectory then depends on what else the process
// is doing). One call at a time keeps each product's result that of a lone call at the current count.
import COpenBLAS
import Synchronization

/// Row-major single-precision matrix products through OpenBLAS.
public enum BLAS {
    private static let calls = Mutex(())

    /// C(m×n) = alpha · op(A)(m×k) · op(B)(k×n) + beta · C, all row-major. `op(B)` is B (k×n,
    /// leading dimension ≥ n) or, with `transposeB`, the transpose of B stored n×k (ldb ≥ k);
    /// likewise for A with `transposeA`.
    public static func sgemm(
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
        b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "negative sgemm dimension")
        precondition(max(m, n, k, lda, ldb, ldc) <= Int(Int32.max), "sgemm dimension exceeds 32 bits")
        calls.withLock { _ in
            cblas_sgemm(
                CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb),
                beta, c, blasint(ldc))
        }
    }

    /// C(n×n) = alpha · Aᵀ·A + beta · C for A (k×n, row-major, leading dimension ≥ n), double
    /// precision; only the upper triangle of C is written (row-major, `ldc` ≥ n).
    public static func dsyrkTransposed(
        n: Int, k: Int, alpha: Double = 1, a: UnsafePointer<Double>, lda: Int,
        beta: Double = 0, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        precondition(n >= 0 && k >= 0, "negative dsyrk dimension")
        precondition(max(n, k, lda, ldc) <= Int(Int32.max), "dsyrk dimension exceeds 32 bits")
        calls.withLock { _ in
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, blasint(n), blasint(k), alpha, a, blasint(lda), beta, c, blasint(ldc))
        }
    }

    /// Sets the number of threads OpenBLAS itself uses (process-wide).
    public static func setThreads(_ n: Int) {
        calls.withLock { _ in openblas_set_num_threads(Int32(clamping: max(1, n))) }
    }

    /// The number of threads OpenBLAS currently uses.
    public static var threads: Int { Int(openblas_get_num_threads()) }
}
