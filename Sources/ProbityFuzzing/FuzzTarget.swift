// The readers of files Probity did not write, each as one function of arbitrary bytes: what the
// libFuzzer shims in Fuzz/ call, and what the replay test feeds every seed and regression file.
// A thrown error is the expected refusal of bad input; a violated property (a reader accepting
// something it then mishandles, a tokenizer that does not round-trip) is reported as a violation.

import Foundation

/// One fuzzed reader. The raw value names its corpus, dictionary and executable (`fuzz-<name>`).
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// GGUF header, metadata, tensor table and data views, then the tokenizer and the model built from it.
    case gguf
    /// A control-vector GGUF (`direction.<layer>` tensors).
    case controlVector = "control-vector"
    /// A LoRA adapter GGUF, validated against a tiny llama base and applied to one forward step.
    case lora
    /// A safetensors header and every tensor converted to floats.
    case safetensors
    /// A SAELens cfg.json.
    case saeConfig = "sae-config"
    /// A pack directory's pack.json, loaded as a whole pack (fixture weights alongside when given).
    case pack
    /// A pack's labels.json.
    case labels
    /// A rule file through the whole compiler: YAML, lint, references, packs, the model check.
    case rules
    /// An audit suite YAML file.
    case suite
    /// A chat messages JSON file, rendered in every chat format.
    case chatMessages = "chat-messages"
    /// A report JSON, re-encoded and merged.
    case report
    /// Byte-level BPE (qwen2's vocabulary) on arbitrary text: encode then decode must give the text back.
    case tokenizerBPE = "tokenizer-bpe"
    /// SentencePiece with byte fallback (llama-spm's vocabulary): the same round trip.
    case tokenizerSPM = "tokenizer-spm"
    /// An .npy array.
    case npy
}

/// What one input did to a reader.
public enum FuzzOutcome: Equatable, Sendable {
    /// The reader read it.
    case accepted
    /// The reader refused it with this message.
    case refused(String)
    /// A property that must hold for every input did not; a bug, like a trap.
    case violation(String)

    public var isViolation: Bool {
        if case .violation = self { return true }
        return false
    }
}

/// What the readers need besides the input: a scratch directory for readers that take a path,
/// fixture packs for the rule compiler, and the cache holding the tokenizer vocabularies.
public final class FuzzContext: @unchecked Sendable {
    /// Created on first use; files in it are overwritten by each input.
    public let scratch: String
    /// A directory of packs (Tests/Fixtures/rules/packs) rule files may name as `../packs/<name>`.
    public let packs: String?
    /// Where scripts/setup put llama.cpp's vocabularies (`<cache>/vocab`).
    public let vocabularies: String
    private var tokenizers: [String: Result<TokenizerBox, FuzzSetupError>] = [:]
    private let lock = NSLock()

    public init(scratch: String, packs: String?, vocabularies: String) throws {
        self.scratch = scratch
        self.packs = packs
        self.vocabularies = vocabularies
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    }

    /// A vocabulary's tokenizer, loaded once.
    func tokenizer(_ name: String, load: (String) throws -> TokenizerBox) throws -> TokenizerBox {
        lock.lock()
        defer { lock.unlock() }
        if let cached = tokenizers[name] { return try cached.get() }
        let path = vocabularies + "/ggml-vocab-\(name).gguf"
        let result: Result<TokenizerBox, FuzzSetupError>
        do { result = .success(try load(path)) } catch {
            result = .failure(FuzzSetupError(description: "cannot load the vocabulary \(path) (run scripts/setup): \(error)"))
        }
        tokenizers[name] = result
        return try result.get()
    }

    /// Writes `bytes` to `name` inside the scratch directory and returns its path.
    func file(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = scratch + "/" + name
        let dir = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw FuzzSetupError(description: "cannot write \(path)")
        }
        return path
    }
}

/// Set-up the fuzzing itself needs and lacks (not a property of the input).
public struct FuzzSetupError: Error, CustomStringConvertible {
    public let description: String
}

extension FuzzTarget {
    /// Runs this target's reader on `bytes`. Throws only `FuzzSetupError` (missing vocabulary,
    /// unwritable scratch directory); every reader error becomes `.refused`.
    public func run(_ bytes: [UInt8], in context: FuzzContext) throws -> FuzzOutcome {
        do {
            switch self {
            case .gguf: return try FuzzReaders.gguf(bytes)
            case .controlVector: return try FuzzReaders.controlVector(bytes, context)
            case .lora: return try FuzzReaders.lora(bytes)
            case .safetensors: return try FuzzReaders.safetensors(bytes)
            case .saeConfig: return try FuzzReaders.saeConfig(bytes)
            case .pack: return try FuzzReaders.pack(bytes, context)
            case .labels: return try FuzzReaders.labels(bytes, context)
            case .rules: return try FuzzReaders.rules(bytes, context)
            case .suite: return try FuzzReaders.suite(bytes, context)
            case .chatMessages: return try FuzzReaders.chatMessages(bytes)
            case .report: return try FuzzReaders.report(bytes)
            case .tokenizerBPE: return try FuzzReaders.roundTrip(bytes, try context.tokenizer("qwen2", load: TokenizerBox.load))
            case .tokenizerSPM: return try FuzzReaders.roundTrip(bytes, try context.tokenizer("llama-spm", load: TokenizerBox.load))
            case .npy: return try FuzzReaders.npy(bytes)
            }
        } catch let error as FuzzSetupError {
            throw error
        } catch {
            return .refused("\(error)")
        }
    }
}
