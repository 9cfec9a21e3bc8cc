// The kernel benchmark runs and reports every measurement it documents, with sane values.
import Testing
import ProbityTensor

@Suite struct KernelBenchmarkTests {
    @Test func reportsEveryMeasurement() {
        let results = KernelBenchmark.run(threads: [1], seconds: 0)
        let expected = [
            "gemv.q4_1.1536x576.t1.GBps", "gemv.q8_0.49152x576.t1.GBps", "gemm.q4_1.1536x576.b512.t1.GFLOPs",
            "model.decode.t1.ms", "model.prefill512.t1.tokps",
        ]
        #expect(Set(results.keys) == Set(expected))
        for (name, value) in results { #expect(value.isFinite && value > 0, "\(name) = \(value)") }
    }
}
