// A thin wrapper over OpenBLAS's row-major CBLAS sgemm (and dsyrk, for float64 fitting).
// OpenBLAS splits a product among its threads and sums the pieces' edges in another order, so its
// bits depend on the thread count (measured: 3–10% of a product's entries differ between 1 and 2
// threads, for shapes from 256×128×32 to 4096×16384×576). That count is one process-wide setting,
// so each call here names its own (default 1) and these calls are serialised: the count is set for
// the call inside the lock and put back to one after it, so a product's result depends only on its
// arguments. The prompt kernels call OpenBLAS directly from every pool thread at once
// (QuantizedMatrix); they rely on that resting count of one, which ThreadPool sets up.
import COpenBLAS
import Synchronization

/// Row-major single-precision matrix products through OpenBLAS.
public enum BLAS {
    /// OpenBLAS's thread count as last set here (0: not yet), guarded with the calls.
    private static let calls = Mutex(0)

    private static func set(_ current: inout Int, to n: Int) {
        if current != n {
            openblas_set_num_threads(Int32(clamping: n))
            current = n
        }
    }

    private static func serialised(threads: Int, _ body: () -> Void) {
        calls.withLock { current in
            set(&current, to: max(1, threads))
            body()
            set(&current, to: 1)
        }
    }

    /// Puts OpenBLAS at one thread of its own, its resting count: callers that run OpenBLAS from
    /// several threads at once (the pool's prompt kernels) must not have each call start more.
    public static func restOnOneThread() {
        calls.withLock { set(&$0, to: 1) }
    }

    /// C(m×n) = alpha · op(A)(m×k) · op(B)(k×n) + beta · C, all row-major. `op(B)` is B (k×n,
    /// leading dimension ≥ n) or, with `transposeB`, the transpose of B stored n×k (ldb ≥ k);
    /// likewise for A with `transposeA`. `threads` is OpenBLAS's own thread count for this call;
    /// the result's bits depend on it.
    public static func sgemm(
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
        b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int = 1
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "negative sgemm dimension")
        precondition(max(m, n, k, lda, ldb, ldc) <= Int(Int32.max), "sgemm dimension exceeds 32 bits")
        serialised(threads: threads) {
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
        beta: Double = 0, c: UnsafeMutablePointer<Double>, ldc: Int, threads: Int = 1
    ) {
        precondition(n >= 0 && k >= 0, "negative dsyrk dimension")
        precondition(max(n, k, lda, ldc) <= Int(Int32.max), "dsyrk dimension exceeds 32 bits")
        serialised(threads: threads) {
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, blasint(n), blasint(k), alpha, a, blasint(lda), beta, c, blasint(ldc))
        }
    }
}
