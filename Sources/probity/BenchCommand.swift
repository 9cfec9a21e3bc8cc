// `probity bench`: prefill and decode tokens/s, load time and peak memory on a model.

import ArgumentParser
import Foundation
import ProbityLM

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure prefill and decode speed, load time and peak memory.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Prompt length for the prefill measurement.")
    var promptTokens: Int = 512

    @Option(help: "Tokens to decode after the prompt.")
    var genTokens: Int = 128

    @Option(name: .customLong("repeat"), help: "Repeats; min, median and max are reported.")
    var repeats: Int = 3

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        let clock = ContinuousClock()
        let t0 = clock.now
        let loaded = try modelOptions.load()
        let loadSeconds = (clock.now - t0).seconds
        let options = BenchmarkOptions(promptTokens: promptTokens, generatedTokens: genTokens, repeats: repeats)
        let result = try Benchmark.run(loaded.model, options: options)
        let rss = Benchmark.peakResidentBytes
        if json {
            func stats(_ t: Throughput) -> [String: Any] {
                ["min": t.min, "median": t.median, "max": t.max, "samples": t.samples]
            }
            print(try jsonString([
                "model": loaded.path,
                "threads": loaded.pool.threadCount,
                "prompt_tokens": promptTokens,
                "gen_tokens": genTokens,
                "repeats": repeats,
                "load_seconds": loadSeconds,
                "prefill_tokens_per_second": stats(result.prefill),
                "decode_tokens_per_second": stats(result.decode),
                "peak_rss_bytes": rss,
            ]))
        } else {
            print("model      \(loaded.path)")
            print("threads    \(loaded.pool.threadCount)")
            print(String(format: "load       %.3f s", loadSeconds))
            print(String(format: "prefill    %.1f tok/s median (min %.1f, max %.1f) over %d × %d tokens",
                         result.prefill.median, result.prefill.min, result.prefill.max, repeats, promptTokens))
            print(String(format: "decode     %.1f tok/s median (min %.1f, max %.1f) over %d × %d tokens",
                         result.decode.median, result.decode.min, result.decode.max, repeats, genTokens))
            print(String(format: "peak RSS   %.1f MiB", Double(rss) / 1_048_576))
        }
    }
}
