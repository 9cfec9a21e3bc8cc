// The kernel benchmark runs and reports every measurement it documents, with sane values. It
// prints them; set PROBITY_KERNEL_BENCH_SECONDS (e.g. 0.5) to time each at 1 and 2 threads
// (docs/KERNELS.md). A benchmark, so it lives outside the unit suite.
import Foundation
import Testing
import ProbityTensor

@Suite struct KernelBenchmarkTests {
    @Test func reportsEveryMeasurement() {
        let seconds = ProcessInfo.processInfo.environment["PROBITY_KERNEL_BENCH_SECONDS"].flatMap(Double.init)
        let threads = seconds == nil ? [1] : [1, 2]
        let results = KernelBenchmark.run(threads: threads, seconds: seconds ?? 0)
        var expected: Set<String> = []
        for n in threads {
            expected.formUnion([
                "gemv.q4_1.1536x576.t\(n).GBps", "gemv.q8_0.49152x576.t\(n).GBps",
                "gemm.q4_1.1536x576.b512.t\(n).GFLOPs", "model.decode.t\(n).ms", "model.prefill512.t\(n).tokps",
            ])
        }
        #expect(Set(results.keys) == expected)
        for (name, value) in results.sorted(by: { $0.key < $1.key }) {
            #expect(value.isFinite && value > 0, "\(name) = \(value)")
            print("kernel benchmark \(name) \((value * 100).rounded() / 100)")
        }
    }
}
