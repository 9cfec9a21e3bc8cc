// A model file opened for use: the memory-mapped GGUF, the architecture built from it, and its
// tokenizer. What the CLI and higher layers hold while they work.

import ProbityFormats
import ProbityTensor

/// A GGUF model with its tokenizer, ready to run.
public struct LoadedModel: Sendable {
    public let path: String
    public let file: GGUFFile
    public let model: any LanguageModel
    public let tokenizer: Tokenizer
    public let pool: ThreadPool
    /// LoRA adapters applied to the model's products, in the order given (none: the base model).
    public var adapters: [AttachedAdapter] = []

    /// Opens `name` (`nil` or `"default"`: the default model; else a path) with `threads`
    /// worker threads (default: all cores), `adapters` applied (docs/lora.md) and its sessions' KV
    /// caches stored as `kvCache` (default: floats; halves only when asked for) and decode's products
    /// taking `activations` (default: float32; 8-bit only when asked for).
    public static func load(_ name: String?, threads: Int? = nil, adapters: [AdapterRequest] = [],
                            kvCache: KVCacheStorage = .f32,
                            activations: ActivationPrecision = .f32) throws -> LoadedModel {
        let path = try ModelLocator.resolve(name)
        let file = try GGUFFile(path: path)
        let threadCount = threads ?? ThreadPool.defaultThreadCount
        guard threadCount >= 1 && threadCount <= 1024 else { throw LoadError.badThreadCount(threadCount) }
        let pool = ThreadPool(threads: threadCount)
        var attached: [AttachedAdapter] = []
        var files: [(file: LoRAAdapterFile, scale: Float)] = []
        for request in adapters {
            let adapter = try LoRAAdapterFile(path: request.path)
            files.append((adapter, request.scale))
            attached.append(AttachedAdapter(
                path: request.path, scale: request.scale, alpha: adapter.alpha, targets: adapter.pairs.map(\.target),
                ranks: Set(adapter.pairs.map(\.rank)).sorted()))
        }
        let updates = try LoRAUpdates(adapters: files, base: file)
        let model = try ModelRegistry.load(file, pool: pool, adapters: updates, kvCache: kvCache,
                                           activations: activations)
        let tokenizer = try Tokenizer(gguf: file)
        return LoadedModel(path: path, file: file, model: model, tokenizer: tokenizer, pool: pool, adapters: attached)
    }
}

public enum LoadError: Error, CustomStringConvertible, Equatable {
    case badThreadCount(Int)

    public var description: String {
        switch self {
        case let .badThreadCount(n): return "thread count: expected 1 to 1024, found \(n)"
        }
    }
}
