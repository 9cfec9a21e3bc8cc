// The thread pool: every index exactly once, for one thread and many, serial and nested calls.
import Testing
@testable import ProbityTensor

@Suite struct ThreadPoolTests {
    /// Counts how often each index ran; slots are written by whichever thread ran the index.
    final class Counts: @unchecked Sendable {
        var slots: UnsafeMutablePointer<Int>
        let count: Int
        init(_ count: Int) {
            self.count = count
            slots = .allocate(capacity: max(count, 1))
            slots.initialize(repeating: 0, count: max(count, 1))
        }
        deinit { slots.deallocate() }
        var all: [Int] { Array(UnsafeBufferPointer(start: slots, count: count)) }
    }

    @Test(arguments: [1, 2, 3, 8])
    func everyIndexRunsExactlyOnce(threads: Int) {
        let pool = ThreadPool(threads: threads)
        #expect(pool.threadCount == threads)
        for count in [0, 1, 2, 7, 64, 1000, 10_007] {
            let counts = Counts(count)
            pool.parallelFor(count) { i in counts.slots[i] += 1 }
            #expect(counts.all.allSatisfy { $0 == 1 }, "threads \(threads), count \(count)")
        }
    }

    @Test func manySerialCallsReuseTheThreads() {
        let pool = ThreadPool(threads: 2)
        let counts = Counts(37)
        for _ in 0..<5000 { pool.parallelFor(37) { i in counts.slots[i] += 1 } }
        #expect(counts.all.allSatisfy { $0 == 5000 })
    }

    @Test func nestedCallsRunEveryIndexOnce() {
        let pool = ThreadPool(threads: 2)
        let counts = Counts(16 * 16)
        pool.parallelFor(16) { i in
            pool.parallelFor(16) { j in counts.slots[i * 16 + j] += 1 }
        }
        #expect(counts.all.allSatisfy { $0 == 1 })
    }

    @Test func concurrentCallersEachRunEveryIndexOnce() async {
        // Two tasks share one pool; whichever finds it busy runs its job serially.
        let pool = ThreadPool(threads: 2)
        let a = Counts(500), b = Counts(500)
        await withTaskGroup(of: Void.self) { group in
            for counts in [a, b] {
                group.addTask {
                    for _ in 0..<200 { pool.parallelFor(500) { i in counts.slots[i] += 1 } }
                }
            }
        }
        #expect(a.all.allSatisfy { $0 == 200 } && b.all.allSatisfy { $0 == 200 })
    }

    @Test func workIsSharedAcrossThreads() {
        // Slow items let a second thread join; with two threads both must have run some.
        let pool = ThreadPool(threads: 2)
        let counts = Counts(64)
        pool.parallelFor(64) { i in
            var x = 0.0
            for k in 0..<200_000 { x += Double(k) }
            counts.slots[i] = Int(pthread_self_id()) + (x < 0 ? 1 : 0)
        }
        #expect(Set(counts.all).count == 2)
    }

    @Test func defaultThreadCountIsPositive() {
        #expect(ThreadPool.defaultThreadCount >= 1)
    }
}

#if canImport(Glibc)
import Glibc
private func pthread_self_id() -> UInt { UInt(pthread_self()) }
#elseif canImport(Darwin)
import Darwin
private func pthread_self_id() -> UInt { UInt(bitPattern: pthread_self()) }
#endif
