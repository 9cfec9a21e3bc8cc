// A persistent pool of worker threads for the kernels: created once, no thread creation or
// allocation per call. The synchronisation core is C (CKernels/pool.c) for its atomics.
import CKernels

/// A persistent pool of worker threads. The thread that calls `parallelFor` works too.
///
/// The pool owns the parallelism: kernels call OpenBLAS from each pool thread, so creating a pool
/// puts OpenBLAS at one thread of its own (`BLAS.restOnOneThread()`); two layers of threads on the
/// same cores only contend.
public final class ThreadPool: @unchecked Sendable {
    /// Threads in all, the caller's included.
    public let threadCount: Int
    private let pool: OpaquePointer

    /// Creates `threads - 1` worker threads (`threads` ≥ 1; the caller's thread counts as one).
    public init(threads: Int) {
        precondition(threads >= 1, "a pool needs at least one thread")
        guard let pool = pk_pool_create(Int32(clamping: threads)) else {
            preconditionFailure("cannot create \(threads - 1) worker threads")
        }
        self.pool = pool
        self.threadCount = threads
        BLAS.restOnOneThread()
    }

    deinit { pk_pool_destroy(pool) }

    /// All cores of this machine.
    public static var defaultThreadCount: Int { max(1, Int(pk_cpu_count())) }

    /// Runs `body(i)` for each i in `0..<count` across the threads (the caller participates) and
    /// returns when all are done. Each index runs exactly once, in no particular order. A call made
    /// from inside `body`, or while another thread's call is running, runs serially on its caller.
    public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        if count == 1 || threadCount == 1 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            var task = body
            withUnsafeMutablePointer(to: &task) { task in
                pk_pool_run(pool, count, { context, index in
                    context.unsafelyUnwrapped.assumingMemoryBound(to: ((Int) -> Void).self).pointee(index)
                }, task)
            }
        }
    }
}
