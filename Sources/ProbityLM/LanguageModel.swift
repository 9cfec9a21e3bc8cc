// The architecture-neutral surface of a loaded model: immutable weights (`LanguageModel`) and
// the mutable state of one sequence (`InferenceSession`: KV cache and scratch).
// Architectures register by `general.architecture` (see `ModelRegistry`).

import ProbityFormats
import ProbityTensor

/// Which positions' logits a forward step should compute. The output head is the largest
/// matrix in a small model, so positions whose logits nobody reads are skipped.
public enum LogitsRequest: Sendable, Equatable {
    case none
    case last
    case all
    /// The positions of this call from index `k` (0-based within its tokens) to the end:
    /// (count − k) rows, none when k ≥ count. `.from(0)` is `.all`.
    case from(Int)
}

/// Facts about a loaded model that callers and hook compilers need.
public struct ModelInfo: Sendable, Equatable {
    public var architecture: String
    public var blockCount: Int
    /// Residual stream width (d_model): the width of every hook point.
    public var width: Int
    public var vocabularySize: Int
    public var contextLength: Int
    /// Every hook point this model has, in forward order.
    public var hookPoints: [HookPoint] { HookPoint.all(blocks: blockCount) }

    public init(architecture: String, blockCount: Int, width: Int, vocabularySize: Int, contextLength: Int) {
        self.architecture = architecture
        self.blockCount = blockCount
        self.width = width
        self.vocabularySize = vocabularySize
        self.contextLength = contextLength
    }

    /// Checks that `point` exists in this model.
    public func validate(_ point: HookPoint) throws {
        guard point.slot(blocks: blockCount) != nil else {
            throw ModelError.unknownHookPoint(point.name, blocks: blockCount)
        }
    }
}

/// A loaded model: weights and hyperparameters, shared read-only by any number of sessions.
public protocol LanguageModel: AnyObject, Sendable {
    var info: ModelInfo { get }
    /// How its sessions' KV caches store keys and values (floats unless chosen at load).
    var kvCache: KVCacheStorage { get }
    /// How decode's products take their input (float32 unless the 8-bit mode was chosen at load).
    var activations: ActivationPrecision { get }
    /// A new sequence with room for `capacity` positions (default: the model's context length).
    func makeSession(capacity: Int?) throws -> InferenceSession
}

/// One sequence being processed: its KV cache, its tokens so far, and scratch memory.
public protocol InferenceSession: AnyObject {
    var info: ModelInfo { get }
    /// Positions already in the cache.
    var length: Int { get }
    /// The most positions this session can hold.
    var capacity: Int { get }
    /// Tokens in the cache, in order.
    var tokens: [Int] { get }

    /// Runs `tokens` at positions `length ..< length + tokens.count`, extending the cache, calling
    /// `hooks` at every hook point, and returns logits as `[positions × vocab]` row-major:
    /// one row for `.last`, one per token for `.all`, none for `.none`.
    func forward(_ tokens: [Int], origins: [TokenOrigin]?, hooks: HookSet?, logits: LogitsRequest) throws -> [Float]

    /// `forward` as the first part of one step that a later call (on this session or a fork of
    /// it) finishes at position `stepEnd`: hooks see the rows of this call's last chunk as rows of
    /// a step ending there (`HookActivations.stepEnd`), as they would in one call of the whole
    /// step. Throws `badStepEnd` unless `stepEnd` is at or after this call's end and the rest fits
    /// in the same chunk of the whole step (`PromptSplit.point` chooses a split that does).
    func forward(_ tokens: [Int], origins: [TokenOrigin]?, hooks: HookSet?, logits: LogitsRequest,
                 stepEnd: Int) throws -> [Float]

    /// Runs `tokens` only as far as `point`, calling `hooks` at every hook point up to and
    /// including it, and computes nothing after it (no later blocks, no logits). For readers of
    /// one layer's activations, such as SAE training. The positions are not kept: afterwards the
    /// session holds what it held before the call.
    func forward(_ tokens: [Int], origins: [TokenOrigin]?, hooks: HookSet?, through point: HookPoint) throws

    /// Forgets every position from `length` on (to reuse a shared prefix).
    func truncate(to length: Int)

    /// A new session of the same model holding this one's positions, tokens and keys and values (a
    /// copy of its cache), with room for `capacity` positions (nil: this session's capacity): a
    /// prompt run once continues in several sessions, each computing from then on exactly what this
    /// one would. Throws when `capacity` is below this session's length.
    func fork(capacity: Int?) throws -> InferenceSession
}

extension InferenceSession {
    public func forward(_ tokens: [Int], hooks: HookSet? = nil, logits: LogitsRequest = .last) throws -> [Float] {
        try forward(tokens, origins: nil, hooks: hooks, logits: logits)
    }

    public func reset() { truncate(to: 0) }
}

/// Errors loading or running a model.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case unsupportedArchitecture(String, supported: [String])
    case missingMetadata(key: String, path: String)
    case badMetadata(key: String, expected: String, found: String, path: String)
    case missingTensor(String, path: String)
    case tensorShape(String, expected: [Int], found: [Int], path: String)
    /// A tensor of a ggml type without kernels; `supported` lists the types Probity computes with.
    case unsupportedTensorType(String, type: String, supported: [String], path: String)
    case contextOverflow(needed: Int, capacity: Int)
    case tokenOutOfRange(Int, vocabularySize: Int)
    case unknownHookPoint(String, blocks: Int)
    case originsCount(expected: Int, found: Int)
    /// A call's `stepEnd` before the call's end, or too far after it to be one chunk with it.
    case badStepEnd(Int, callEnd: Int, chunkRows: Int)
    /// A `FILE[:SCALE]` adapter argument that does not parse.
    case adapterArgument(String)
    case adaptersUnsupported(architecture: String, supported: [String])
    /// A tensor that marks a variant of the architecture Probity does not implement.
    case unsupportedVariant(tensor: String, reason: String, path: String)

    public var description: String {
        switch self {
        case let .unsupportedArchitecture(arch, supported):
            return "architecture '\(arch)' is not supported (supported: \(supported.joined(separator: ", ")))"
        case let .missingMetadata(key, path):
            return "\(path): missing metadata key '\(key)'"
        case let .badMetadata(key, expected, found, path):
            return "\(path): metadata '\(key)': expected \(expected), found \(found)"
        case let .missingTensor(name, path):
            return "\(path): missing tensor '\(name)'"
        case let .tensorShape(name, expected, found, path):
            return "\(path): tensor \(name): expected shape \(expected), found \(found)"
        case let .unsupportedTensorType(name, type, supported, path):
            return "\(path): tensor \(name) has type \(type), which Probity cannot compute with;"
                + " expected one of \(supported.joined(separator: ", "))"
        case let .contextOverflow(needed, capacity):
            return "the sequence needs \(needed) positions but the context holds \(capacity)"
        case let .tokenOutOfRange(token, vocab):
            return "token id \(token) is outside the vocabulary (0..<\(vocab))"
        case let .unknownHookPoint(name, blocks):
            return "hook point '\(name)' does not exist in this model (\(blocks) blocks: hook_embed, blocks.0-\(blocks - 1).hook_{resid_pre,attn_out,resid_mid,mlp_out,resid_post}, ln_final.hook_normalized)"
        case let .originsCount(expected, found):
            return "expected \(expected) token origins, found \(found)"
        case let .badStepEnd(end, callEnd, chunkRows):
            return "a step ending at \(end) cannot continue a call ending at \(callEnd) (chunks of \(chunkRows) positions)"
        case let .adapterArgument(arg):
            return "adapter '\(arg)': expected FILE.gguf or FILE.gguf:SCALE with a finite SCALE"
        case let .unsupportedVariant(tensor, reason, path):
            return "\(path): tensor \(tensor): \(reason)"
        case let .adaptersUnsupported(arch, supported):
            return "LoRA adapters are not supported on architecture '\(arch)' yet (supported: \(supported.joined(separator: ", ")))"
        }
    }
}

/// Architectures by `general.architecture`. Adding one: write `<Arch>Model.swift` with a loader
/// and add a line here (docs/architectures.md).
public enum ModelRegistry {
    typealias Loader = @Sendable (GGUFFile, ThreadPool, LoRAUpdates, KVCacheStorage, ActivationPrecision) throws
        -> any LanguageModel

    /// The Llama-style families (`DecoderFamily.all`: llama, qwen2, qwen3, phi3) and Gemma 3.
    static let loaders: [String: Loader] = {
        var table: [String: Loader] = [
            "gemma3": { gguf, pool, adapters, kvCache, activations in
                guard adapters.isEmpty else {
                    throw ModelError.adaptersUnsupported(architecture: "gemma3",
                                                         supported: DecoderFamily.all.map(\.architecture))
                }
                return try Gemma3Model(gguf: gguf, pool: pool, kvCache: kvCache, activations: activations)
            },
        ]
        for family in DecoderFamily.all {
            table[family.architecture] = {
                try LlamaModel(gguf: $0, pool: $1, adapters: $2, kvCache: $3, activations: $4)
            }
        }
        return table
    }()

    public static var supportedArchitectures: [String] { loaders.keys.sorted() }

    /// Loads the model a GGUF file declares, with `adapters`' low-rank updates applied to its products
    /// (none: the base model, computed exactly as without adapter support), its sessions' KV caches
    /// stored as `kvCache`, decode's products taking `activations` (DESIGN.md, "Numerics": 8-bit
    /// only when asked for).
    public static func load(_ gguf: GGUFFile, pool: ThreadPool, adapters: LoRAUpdates = .none,
                            kvCache: KVCacheStorage = .f32,
                            activations: ActivationPrecision = .f32) throws -> any LanguageModel {
        guard let archValue = gguf.value("general.architecture") else {
            throw ModelError.missingMetadata(key: "general.architecture", path: gguf.path)
        }
        guard let arch = archValue.stringValue else {
            throw ModelError.badMetadata(key: "general.architecture", expected: "string",
                                         found: archValue.typeName, path: gguf.path)
        }
        guard let loader = loaders[arch] else {
            throw ModelError.unsupportedArchitecture(arch, supported: supportedArchitectures)
        }
        return try loader(gguf, pool, adapters, kvCache, activations)
    }
}
