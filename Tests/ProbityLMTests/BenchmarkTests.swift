// The benchmark's bookkeeping: interleaved configurations and paired slowdowns.

import Testing
@testable import ProbityLM
import ProbityTestSupport

@Suite struct BenchmarkTests {
    @Test func slowdownIsTheMedianOfPairedRatios() {
        // Pairs (60, 100), (49, 50), (79, 80): ratios 0.4, 0.02, 0.0125, median 0.02. The machine
        // slowed between pairs, so the ratio of the medians (1 − 60 / 80 = 0.25) would blame the monitor.
        let with = Throughput(samples: [60, 49, 79]), without = Throughput(samples: [100, 50, 80])
        #expect(abs(Benchmark.slowdown(with, comparedWith: without) - 0.02) < 1e-12)
        #expect(abs((1 - with.median / without.median) - 0.25) < 1e-12)
        // Each monitored run 10% slower than its own plain run while the machine halved its speed.
        let drifting = Throughput(samples: [200, 100, 50]), monitored = Throughput(samples: [180, 90, 45])
        #expect(abs(Benchmark.slowdown(monitored, comparedWith: drifting) - 0.1) < 1e-12)
    }

    @Test func everyConfigurationGetsEveryRepeat() throws {
        let model = try Reference.defaultModel()
        var seen = 0
        let hooks = HookSet()
        hooks.attach(at: .residPost(3)) { _ in seen += 1 }
        let options = BenchmarkOptions(promptTokens: 8, generatedTokens: 3, repeats: 2)
        let results = try Benchmark.run(model, options: options, configurations: [nil, hooks])
        #expect(results.count == 2)
        #expect(results.allSatisfy { $0.prefill.samples.count == 2 && $0.decode.samples.count == 2 })
        #expect(results.allSatisfy { $0.decode.samples.allSatisfy { $0 > 0 } })
        // The hook saw the prompt step and each decode step of both repeats, only in its configuration.
        #expect(seen == 2 * (1 + 3))
        #expect(throws: BenchmarkError.self) {
            try Benchmark.run(model, options: BenchmarkOptions(promptTokens: 0), configurations: [nil])
        }
    }
}
