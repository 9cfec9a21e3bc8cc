// Throughput measurement for `probity bench`: prefill and decode tokens/s over repeats, with
// optional hooks attached, the way llama.cpp's llama-bench measures (random prompt tokens,
// greedy decode, wall-clock time).

import Foundation
import ProbityTensor
#if canImport(Glibc)
import Glibc
#endif

/// What to measure.
public struct BenchmarkOptions: Sendable {
    public var promptTokens = 512
    public var generatedTokens = 128
    public var repeats = 3
    public var seed: UInt64 = 42

    public init(promptTokens: Int = 512, generatedTokens: Int = 128, repeats: Int = 3, seed: UInt64 = 42) {
        self.promptTokens = promptTokens
        self.generatedTokens = generatedTokens
        self.repeats = repeats
        self.seed = seed
    }
}

/// Tokens per second of each repeat, with summary statistics.
public struct Throughput: Sendable {
    public var samples: [Double]
    public var min: Double { samples.min() ?? 0 }
    public var max: Double { samples.max() ?? 0 }
    public var median: Double {
        let s = samples.sorted()
        guard !s.isEmpty else { return 0 }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

public struct BenchmarkResult: Sendable {
    public var prefill: Throughput
    public var decode: Throughput
    /// Tokens per second of the process's CPU time (all its threads): with one thread, a rate
    /// that other processes competing for the cores disturb far less than wall-clock time.
    public var prefillCPU: Throughput
    public var decodeCPU: Throughput
}

public enum Benchmark {
    /// Runs `repeats` times: prefill `promptTokens` random tokens in one step, then decode
    /// `generatedTokens` greedily one at a time, with `hooks` attached throughout.
    public static func run(_ model: any LanguageModel, options: BenchmarkOptions, hooks: HookSet? = nil) throws -> BenchmarkResult {
        guard let result = try run(model, options: options, configurations: [hooks]).first else {
            throw BenchmarkError.badOption("no configuration to measure")
        }
        return result
    }

    /// As `run(_:options:hooks:)` for each hook configuration, interleaved: every repeat measures
    /// each configuration in turn on the same prompt, so a machine whose speed drifts over minutes
    /// disturbs them alike and sample i of one compares with sample i of another (`slowdown`).
    public static func run(_ model: any LanguageModel, options: BenchmarkOptions,
                           configurations: [HookSet?]) throws -> [BenchmarkResult] {
        guard options.promptTokens >= 1, options.generatedTokens >= 1, options.repeats >= 1 else {
            throw BenchmarkError.badOption("prompt tokens, generated tokens and repeats must each be at least 1")
        }
        let needed = options.promptTokens + options.generatedTokens
        guard needed <= model.info.contextLength else {
            throw ModelError.contextOverflow(needed: needed, capacity: model.info.contextLength)
        }
        var rng = Xoshiro256StarStar(seed: options.seed)
        // Ordinary tokens only: skip the first few hundred ids, where special tokens live.
        let low = min(1000, model.info.vocabularySize - 1)
        let prompt = (0..<options.promptTokens).map { _ in
            low + Int(rng.next() % UInt64(model.info.vocabularySize - low))
        }
        let session = try model.makeSession(capacity: needed)
        let clock = ContinuousClock()
        var samples = Array(repeating: (prefill: [Double](), decode: [Double](), prefillCPU: [Double](), decodeCPU: [Double]()),
                            count: configurations.count)
        for _ in 0..<options.repeats {
            for (k, hooks) in configurations.enumerated() {
                session.reset()
                let (t0, c0) = (clock.now, cpuSeconds)
                var logits = try session.forward(prompt, origins: nil, hooks: hooks, logits: .last)
                let (t1, c1) = (clock.now, cpuSeconds)
                for _ in 0..<options.generatedTokens {
                    let next = argmaxIndex(logits)
                    logits = try session.forward([next], origins: [.generated], hooks: hooks, logits: .last)
                }
                let (t2, c2) = (clock.now, cpuSeconds)
                samples[k].prefill.append(Double(options.promptTokens) / (t1 - t0).seconds)
                samples[k].decode.append(Double(options.generatedTokens) / (t2 - t1).seconds)
                samples[k].prefillCPU.append(Double(options.promptTokens) / max(c1 - c0, 1e-9))
                samples[k].decodeCPU.append(Double(options.generatedTokens) / max(c2 - c1, 1e-9))
            }
        }
        return samples.map {
            BenchmarkResult(prefill: Throughput(samples: $0.prefill), decode: Throughput(samples: $0.decode),
                            prefillCPU: Throughput(samples: $0.prefillCPU), decodeCPU: Throughput(samples: $0.decodeCPU))
        }
    }

    /// How much slower `with` ran than `without`: the median over repeats of 1 − with_i / without_i,
    /// each pair measured back to back (see `run(_:options:configurations:)`).
    public static func slowdown(_ with: Throughput, comparedWith without: Throughput) -> Double {
        let ratios = zip(with.samples, without.samples).map { 1 - $0 / $1 }
        return Throughput(samples: ratios).median
    }

    /// CPU time the process has used, all threads, in seconds.
    static var cpuSeconds: Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    /// The process's peak resident set size in bytes.
    public static var peakResidentBytes: Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024  // kilobytes on Linux
    }

    static func argmaxIndex(_ v: [Float]) -> Int {
        var best = 0
        for i in v.indices where v[i] > v[best] { best = i }
        return best
    }
}

public enum BenchmarkError: Error, CustomStringConvertible, Equatable {
    case badOption(String)
    public var description: String {
        switch self { case let .badOption(m): return m }
    }
}
