// Aggregate decode throughput of batched decoding (`probity bench --batch N,...`): N sequences,
// each prefilled with its own random prompt, then decoded greedily together with `BatchDecoder`,
// one position per sequence per step; tokens/s counts every sequence's tokens over the decode time.

import Foundation
import ProbityTensor

/// Decode throughput at one batch size.
public struct BatchThroughput: Sendable {
    public var batch: Int
    /// All sequences' decoded tokens per wall-clock second, per repeat.
    public var decode: Throughput
    /// The same per second of the process's CPU time.
    public var decodeCPU: Throughput
    /// Whether the steps ran fused (weights read once per step) or sequence by sequence.
    public var fused: Bool
}

extension Benchmark {
    /// For each size in `batches`, `repeats` times: prefill `batch` random prompts of
    /// `promptTokens` (each alone; not timed), then `generatedTokens` batched greedy steps (timed).
    /// Sizes are interleaved within a repeat, so a machine whose speed drifts disturbs them alike.
    public static func runBatched(_ model: any LanguageModel, options: BenchmarkOptions,
                                  batches: [Int]) throws -> [BatchThroughput] {
        guard options.promptTokens >= 1, options.generatedTokens >= 1, options.repeats >= 1 else {
            throw BenchmarkError.badOption("prompt tokens, generated tokens and repeats must each be at least 1")
        }
        guard !batches.isEmpty, batches.allSatisfy({ $0 >= 1 && $0 <= 4096 }) else {
            throw BenchmarkError.badOption("batch sizes must each be 1 to 4096, found \(batches)")
        }
        let needed = options.promptTokens + options.generatedTokens
        guard needed <= model.info.contextLength else {
            throw ModelError.contextOverflow(needed: needed, capacity: model.info.contextLength)
        }
        var rng = Xoshiro256StarStar(seed: options.seed)
        let vocab = model.info.vocabularySize, low = min(1000, vocab - 1)
        let widest = batches.max() ?? 1
        let prompts = (0..<widest).map { _ in
            (0..<options.promptTokens).map { _ in low + Int(rng.next() % UInt64(vocab - low)) }
        }
        let decoder = BatchDecoder(model: model)
        let sessions = try (0..<widest).map { _ in try model.makeSession(capacity: needed) }
        let clock = ContinuousClock()
        var wall = Array(repeating: [Double](), count: batches.count), cpu = wall
        for _ in 0..<options.repeats {
            for (k, n) in batches.enumerated() {
                var next: [Int] = []
                for i in 0..<n {
                    sessions[i].reset()
                    next.append(argmaxIndex(try sessions[i].forward(prompts[i], origins: nil, hooks: nil, logits: .last)))
                }
                let (t0, c0) = (clock.now, cpuSeconds)
                for _ in 0..<options.generatedTokens {
                    let logits = try decoder.step((0..<n).map { DecodeRequest(session: sessions[$0], token: next[$0]) })
                    next = logits.map(argmaxIndex)
                }
                let (t1, c1) = (clock.now, cpuSeconds)
                let tokens = Double(n * options.generatedTokens)
                wall[k].append(tokens / (t1 - t0).seconds)
                cpu[k].append(tokens / max(c1 - c0, 1e-9))
            }
        }
        return batches.indices.map {
            BatchThroughput(batch: batches[$0], decode: Throughput(samples: wall[$0]),
                            decodeCPU: Throughput(samples: cpu[$0]), fused: decoder.fusesBatches)
        }
    }

}
