// `probity bench`: prefill and decode tokens/s, load time and peak memory on a model, optionally
// with an SAE monitor attached at one hook (a pack's, or a random TopK SAE of a given size).

import ArgumentParser
import Foundation
import ProbityFeatures
import ProbityLM
import ProbityTensor

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure prefill and decode speed, load time and peak memory.",
        discussion: """
            With --sae-latents N (or --pack PACK) the run is repeated with an SAE monitor attached \
            at --hook: every position of every step is encoded, its top latents and reconstruction \
            error recorded, as an audit does. A random SAE is TopK with k 32, like a trained one, \
            its weights held as --sae-dtype; a pack's are held as the pack stores them. Each \
            repeat runs without and with the monitor back to back, and the slowdown is the median \
            of those pairs, so a machine whose speed drifts disturbs both alike.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Prompt length for the prefill measurement.")
    var promptTokens: Int = 512

    @Option(help: "Tokens to decode after the prompt.")
    var genTokens: Int = 128

    @Option(name: .customLong("repeat"), help: "Repeats; min, median and max are reported.")
    var repeats: Int = 3

    @Option(help: "Also measure with a random TopK SAE of this many latents attached.")
    var saeLatents: Int?

    @OptionGroup var packOption: PackOption
    var pack: String? { packOption.pack }

    @Option(help: "Hook point for the SAE.")
    var hook: String?

    @Option(help: "Element type of the random SAE's weights: f32, f16 or bf16.")
    var saeDtype: SAEWeightTypeArgument = .f16

    @Flag(inversion: .prefixedNo, help: "Reconstruct each position in the SAE monitor (its error and the FVU sums).")
    var fvu = true

    @Option(help: ArgumentHelp("Measure batched decode instead: aggregate tok/s of N sequences decoded together, for each N.",
                               valueName: "N[,N...]"))
    var batch: String?

    @OptionGroup var kvCacheOption: KVCacheOption
    @OptionGroup var activationsOption: ActivationsOption

    @OptionGroup var kernelLevel: KernelLevelOption

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    /// `--batch` as sizes; nil when not given.
    func batchSizes() throws -> [Int]? {
        guard let batch else { return nil }
        let parts = batch.split(separator: ",", omittingEmptySubsequences: false)
        let sizes = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, sizes.count == parts.count, sizes.allSatisfy({ $0 >= 1 && $0 <= 4096 }) else {
            throw ValidationError("--batch: expected sizes 1 to 4096 separated by commas (e.g. 1,4,8), found '\(batch)'")
        }
        return sizes
    }

    func validate() throws {
        if try batchSizes() != nil && (saeLatents != nil || pack != nil) {
            throw ValidationError("--batch measures the model alone; give it without --sae-latents or --pack")
        }
        if let n = saeLatents, n < 1 { throw ValidationError("--sae-latents must be at least 1, found \(n)") }
        if saeLatents != nil && pack != nil { throw ValidationError("give --sae-latents or --pack, not both") }
    }

    func run() throws {
        // Before anything reads the level: the kernels cache it.
        try kernelLevel.apply()
        let clock = ContinuousClock()
        let t0 = clock.now
        let loaded = try modelOptions.load(kvCache: try kvCacheOption.storage(),
                                           activations: try activationsOption.precision())
        let loadSeconds = (clock.now - t0).seconds
        let options = BenchmarkOptions(promptTokens: promptTokens, generatedTokens: genTokens, repeats: repeats)
        if let sizes = try batchSizes() {
            try runBatched(loaded, options: options, sizes: sizes, loadSeconds: loadSeconds)
            return
        }
        // Check the SAE and its hook before measuring anything.
        var monitored: (hooks: HookSet, binding: SAEBinding)?
        if let binding = try saeBinding(model: loaded.model.info) {
            let plan = FeaturePlan()
            _ = plan.monitor(binding, top: 10, reconstruct: fvu)
            let hooks = HookSet()
            try plan.attach(to: hooks, model: loaded.model.info)
            monitored = (hooks, binding)
        }
        // With a monitor, each repeat runs plain and monitored back to back.
        let results = try Benchmark.run(loaded.model, options: options, configurations: [nil] + (monitored.map { [$0.hooks] } ?? []))
        guard let plain = results.first else { throw ValidationError("bench: nothing was measured") }
        var withSAE: (result: BenchmarkResult, binding: SAEBinding)?
        if let (_, binding) = monitored, results.count > 1 {
            withSAE = (results[1], binding)
        }
        let rss = Benchmark.peakResidentBytes
        if json {
            func stats(_ t: Throughput) -> [String: Any] {
                ["min": t.min, "median": t.median, "max": t.max, "samples": t.samples]
            }
            var object: [String: Any] = [
                "model": loaded.path,
                "threads": loaded.pool.threadCount,
                "prompt_tokens": promptTokens,
                "gen_tokens": genTokens,
                "repeats": repeats,
                "load_seconds": loadSeconds,
                "prefill_tokens_per_second": stats(plain.prefill),
                "decode_tokens_per_second": stats(plain.decode),
                "prefill_tokens_per_cpu_second": stats(plain.prefillCPU),
                "decode_tokens_per_cpu_second": stats(plain.decodeCPU),
                "peak_rss_bytes": rss,
                "kv_cache": loaded.model.kvCache.rawValue,
                "activations": loaded.model.activations.rawValue,
                "isa": KernelLevel.current.rawValue,
                "q8_isa": KernelLevel.q8.rawValue,
            ]
            if !loaded.adapters.isEmpty {
                object["adapters"] = loaded.adapters.map { ["path": $0.path, "scale": Double($0.scale)] as [String: Any] }
            }
            if let (r, b) = withSAE {
                object["sae"] = [
                    "name": b.name, "hook": b.point.name, "latents": b.sae.dSAE,
                    "weight_type": b.sae.weightType.name, "fvu": fvu,
                    "prefill_tokens_per_second": stats(r.prefill),
                    "decode_tokens_per_second": stats(r.decode),
                    "prefill_slowdown": Benchmark.slowdown(r.prefill, comparedWith: plain.prefill),
                    "decode_slowdown": Benchmark.slowdown(r.decode, comparedWith: plain.decode),
                    "prefill_tokens_per_cpu_second": stats(r.prefillCPU),
                    "decode_tokens_per_cpu_second": stats(r.decodeCPU),
                    "prefill_cpu_slowdown": Benchmark.slowdown(r.prefillCPU, comparedWith: plain.prefillCPU),
                    "decode_cpu_slowdown": Benchmark.slowdown(r.decodeCPU, comparedWith: plain.decodeCPU),
                ] as [String: Any]
            }
            print(try jsonString(object))
        } else {
            print("model      \(loaded.path)")
            print("threads    \(loaded.pool.threadCount)")
            print("kv cache   \(loaded.model.kvCache.rawValue)")
            print("kernels    \(KernelLevel.current.rawValue)")
            print("activations \(loaded.model.activations.rawValue)"
                  + (loaded.model.activations == .q8 ? " (8-bit products at \(KernelLevel.q8.rawValue))" : ""))
            for a in loaded.adapters { print("lora       \(a.path) at scale \(a.scale)") }
            print(String(format: "load       %.3f s", loadSeconds))
            printRates("", plain)
            if let (r, b) = withSAE {
                print("with SAE   \(b.name): \(b.sae.dSAE) latents at \(b.point.name), weights \(b.sae.weightType.name), "
                      + (fvu ? "top latents and FVU" : "top latents"))
                printRates("  ", r)
                print(String(format: "  slowdown prefill %.1f%%, decode %.1f%% (median of paired repeats)",
                             100 * Benchmark.slowdown(r.prefill, comparedWith: plain.prefill),
                             100 * Benchmark.slowdown(r.decode, comparedWith: plain.decode)))
            }
            print(String(format: "peak RSS   %.1f MiB", Double(rss) / 1_048_576))
        }
    }

    /// `--batch`: aggregate decode tok/s per batch size.
    private func runBatched(_ loaded: LoadedModel, options: BenchmarkOptions, sizes: [Int], loadSeconds: Double) throws {
        let results = try Benchmark.runBatched(loaded.model, options: options, batches: sizes)
        let rss = Benchmark.peakResidentBytes
        if json {
            func stats(_ t: Throughput) -> [String: Any] {
                ["min": t.min, "median": t.median, "max": t.max, "samples": t.samples]
            }
            var object: [String: Any] = [
                "model": loaded.path, "threads": loaded.pool.threadCount, "prompt_tokens": promptTokens,
                "gen_tokens": genTokens, "repeats": repeats, "load_seconds": loadSeconds, "peak_rss_bytes": rss,
                "kv_cache": loaded.model.kvCache.rawValue,
                "activations": loaded.model.activations.rawValue,
                "isa": KernelLevel.current.rawValue,
                "fused": results.first?.fused ?? false,
                "batches": results.map { r -> [String: Any] in
                    ["batch": r.batch, "decode_tokens_per_second": stats(r.decode),
                     "decode_tokens_per_cpu_second": stats(r.decodeCPU)]
                },
            ]
            if !loaded.adapters.isEmpty {
                object["adapters"] = loaded.adapters.map { ["path": $0.path, "scale": Double($0.scale)] as [String: Any] }
            }
            print(try jsonString(object))
            return
        }
        print("model      \(loaded.path)")
        print("threads    \(loaded.pool.threadCount)")
        print("kv cache   \(loaded.model.kvCache.rawValue)")
        print("kernels    \(KernelLevel.current.rawValue)")
        print("activations \(loaded.model.activations.rawValue)")
        for a in loaded.adapters { print("lora       \(a.path) at scale \(a.scale)") }
        print("batched    \(results.first?.fused ?? false ? "fused (weights read once per step)" : "sequence by sequence")")
        print(String(format: "load       %.3f s", loadSeconds))
        for r in results {
            print(String(format: "batch %-4d decode %.1f tok/s median (min %.1f, max %.1f) over %d × %d × %d tokens",
                         r.batch, r.decode.median, r.decode.min, r.decode.max, repeats, r.batch, genTokens))
        }
        print(String(format: "peak RSS   %.1f MiB", Double(rss) / 1_048_576))
    }

    private func printRates(_ indent: String, _ r: BenchmarkResult) {
        print(indent + String(format: "prefill    %.1f tok/s median (min %.1f, max %.1f) over %d × %d tokens",
                              r.prefill.median, r.prefill.min, r.prefill.max, repeats, promptTokens))
        print(indent + String(format: "decode     %.1f tok/s median (min %.1f, max %.1f) over %d × %d tokens",
                              r.decode.median, r.decode.min, r.decode.max, repeats, genTokens))
    }

    /// The SAE to attach, if any: a pack's, or a seeded random TopK SAE.
    private func saeBinding(model: ModelInfo) throws -> SAEBinding? {
        let pointName = hook
        if let pack {
            let p = try FeaturePack.load(path: pack)
            guard let sae = p.sae else { throw BenchInputError.notAnSAEPack(pack) }
            let point = try pointName.map(parseHook) ?? p.hook
            return SAEBinding(name: p.name, sae: sae, point: point, labels: p.labels)
        }
        guard let latents = saeLatents else { return nil }
        let point = try parseHook(pointName ?? "blocks.15.hook_resid_post")
        return SAEBinding(name: "random-\(latents)", sae: try randomSAE(dIn: model.width, latents: latents),
                          point: point)
    }

    private func parseHook(_ name: String) throws -> HookPoint {
        guard let p = HookPoint(name: name) else { throw HookNameError.notAHookName(name) }
        return p
    }

    /// A TopK (k = 32) SAE with uniform random weights of unit-scale rows, seeded, held as --sae-dtype.
    private func randomSAE(dIn: Int, latents: Int) throws -> SparseAutoencoder {
        var rng = Xoshiro256StarStar(seed: 1)
        let a = Float(1 / Double(dIn).squareRoot())
        func uniform(_ n: Int) -> [Float] { (0..<n).map { _ in Float(rng.nextUnitDouble() * 2 - 1) * a } }
        let config = SAEConfig(dIn: dIn, dSAE: latents, architecture: .topK(min(32, latents)))
        return try SparseAutoencoder(config: config, wEnc: uniform(dIn * latents), bEnc: [Float](repeating: 0, count: latents),
                                     wDec: uniform(latents * dIn), bDec: [Float](repeating: 0, count: dIn), threshold: nil,
                                     weightType: saeDtype.type)
    }
}

/// `--sae-dtype`: the element types SAE weights can be held in.
enum SAEWeightTypeArgument: String, ExpressibleByArgument, CaseIterable {
    case f32, f16, bf16

    var type: GGMLType {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        }
    }
}

enum BenchInputError: BadInput {
    case notAnSAEPack(String)

    var description: String {
        switch self {
        case let .notAnSAEPack(path): return "\(path): not an SAE pack (bench attaches an SAE; this pack holds directions)"
        }
    }
}
