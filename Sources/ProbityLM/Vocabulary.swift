// A tokenizer vocabulary as a GGUF file describes it (ggml docs/gguf.md "tokenizer.ggml.*"),
// checked and completed with the defaults llama.cpp applies in llama_vocab::impl::load.

import ProbityFormats

/// The token type codes of `tokenizer.ggml.token_type` (llama.cpp `llama_token_type`).
public enum TokenType: Int, Sendable {
    case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6

    /// Any code outside 0...6 is undefined, as in llama.cpp.
    init(code: Int) { self = TokenType(rawValue: code) ?? .undefined }
}

/// Everything a tokenizer needs from a model file, validated.
public struct Vocabulary: Sendable {
    /// The tokenizer family of `tokenizer.ggml.model`.
    public enum Model: String, Sendable {
        /// Byte-level BPE over GPT-2's byte-to-unicode map (`gpt2`).
        case bytePairEncoding = "gpt2"
        /// SentencePiece-style merges by score with byte fallback (`llama`).
        case sentencePiece = "llama"
    }

    /// The tokenizer family (`tokenizer.ggml.model`).
    public let model: Model
    /// Token texts as stored: byte-level encoded for BPE, with `▁` for spaces for SentencePiece.
    /// An empty text is replaced by `[EMPTY_<id>]`, as llama.cpp does when loading.
    public let tokens: [String]
    /// One type per token (`tokenizer.ggml.token_type`; all normal when the file has none).
    public let types: [TokenType]
    /// SentencePiece merge scores, one per token (all zero when the file has none).
    public let scores: [Float]
    /// BPE merges, `"left right"`, in rank order.
    public let merges: [String]
    /// Special token ids (`tokenizer.ggml.*_token_id`), each inside the vocabulary.
    public let bosID: Int?
    public let eosID: Int?
    public let unknownID: Int?
    public let paddingID: Int?
    /// Whether encoding with special tokens adds BOS first / EOS last.
    public let addBOS: Bool
    public let addEOS: Bool
    /// Whether SentencePiece text gets a leading space (`tokenizer.ggml.add_space_prefix`).
    public let addSpacePrefix: Bool
    /// The pre-tokenizer (`tokenizer.ggml.pre`); BPE only.
    public let preTokenizer: PreTokenizer?
    /// Special tokens that swallow the whitespace after them when parsed from text (llama.cpp's
    /// RSTRIP attribute, which it sets by model name: Phi-3).
    public let rightStripIDs: Set<Int>

    /// A vocabulary from plain values. Checks what `init(metadata:source:)` checks, except that
    /// the defaults are the caller's.
    public init(model: Model, tokens: [String], types: [TokenType]? = nil, scores: [Float]? = nil,
                merges: [String] = [], bosID: Int? = nil, eosID: Int? = nil, unknownID: Int? = nil,
                paddingID: Int? = nil, addBOS: Bool = false, addEOS: Bool = false,
                addSpacePrefix: Bool = false, preTokenizer: PreTokenizer? = nil,
                rightStripIDs: Set<Int> = [], source: String = "vocabulary") throws {
        guard !tokens.isEmpty else { throw TokenizerError.emptyVocabulary(source: source) }
        let n = tokens.count
        let types = types ?? Array(repeating: .normal, count: n)
        guard types.count == n else {
            throw TokenizerError.lengthMismatch(source: source, key: Key.tokenType, expected: n, found: types.count)
        }
        let scores = scores ?? Array(repeating: 0, count: n)
        guard scores.count == n else {
            throw TokenizerError.lengthMismatch(source: source, key: Key.scores, expected: n, found: scores.count)
        }
        for (key, id) in [(Key.bos, bosID), (Key.eos, eosID), (Key.unknown, unknownID), (Key.padding, paddingID)] {
            if let id, !(0..<n).contains(id) {
                throw TokenizerError.specialTokenOutOfRange(source: source, key: key, id: id, vocabularySize: n)
            }
        }
        if addBOS, bosID == nil {
            throw TokenizerError.missingSpecialToken(source: source, key: Key.bos, reason: "the vocabulary asks for a BOS token to be added")
        }
        if addEOS, eosID == nil {
            throw TokenizerError.missingSpecialToken(source: source, key: Key.eos, reason: "the vocabulary asks for an EOS token to be added")
        }
        if model == .bytePairEncoding {
            if merges.isEmpty { throw TokenizerError.missingKey(source: source, key: Key.merges) }
            if preTokenizer == nil { throw TokenizerError.missingKey(source: source, key: Key.pre) }
        }
        self.model = model
        self.tokens = tokens.enumerated().map { $1.isEmpty ? "[EMPTY_\($0)]" : $1 }
        self.types = types
        self.scores = scores
        self.merges = merges
        self.bosID = bosID
        self.eosID = eosID
        self.unknownID = unknownID
        self.paddingID = paddingID
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix
        self.preTokenizer = preTokenizer
        self.rightStripIDs = rightStripIDs.filter { (0..<n).contains($0) }
    }

    /// Number of tokens.
    public var count: Int { tokens.count }

    /// GGUF metadata keys of the tokenizer.
    public enum Key {
        public static let model = "tokenizer.ggml.model"
        public static let pre = "tokenizer.ggml.pre"
        public static let tokens = "tokenizer.ggml.tokens"
        public static let tokenType = "tokenizer.ggml.token_type"
        public static let scores = "tokenizer.ggml.scores"
        public static let merges = "tokenizer.ggml.merges"
        public static let bos = "tokenizer.ggml.bos_token_id"
        public static let eos = "tokenizer.ggml.eos_token_id"
        public static let unknown = "tokenizer.ggml.unknown_token_id"
        public static let padding = "tokenizer.ggml.padding_token_id"
        public static let addBOS = "tokenizer.ggml.add_bos_token"
        public static let addEOS = "tokenizer.ggml.add_eos_token"
        public static let addSpacePrefix = "tokenizer.ggml.add_space_prefix"
    }
}

extension Vocabulary {
    /// The vocabulary of a GGUF file.
    public init(gguf: GGUFFile) throws {
        try self.init(metadata: gguf.metadata, source: gguf.path)
    }

    /// The vocabulary described by GGUF metadata. Defaults are llama.cpp's: SentencePiece
    /// vocabularies add BOS (id 1) and a space prefix, and default to unknown 0 / EOS 2; BPE
    /// vocabularies add nothing unless their pre-tokenizer says so (Llama 3 adds BOS). Unlike
    /// llama.cpp, a special token id outside the vocabulary and a missing `tokenizer.ggml.pre`
    /// are errors rather than warnings.
    public init(metadata: [String: GGUFValue], source: String) throws {
        func string(_ key: String) throws -> String? {
            guard let v = metadata[key] else { return nil }
            guard let s = v.stringValue else {
                throw TokenizerError.wrongType(source: source, key: key, expected: "string", found: v.typeName)
            }
            return s
        }
        func int(_ key: String) throws -> Int? {
            guard let v = metadata[key] else { return nil }
            guard let i = v.intValue else {
                throw TokenizerError.wrongType(source: source, key: key, expected: "an integer", found: v.typeName)
            }
            return i
        }
        func bool(_ key: String) throws -> Bool? {
            guard let v = metadata[key] else { return nil }
            guard let b = v.boolValue else {
                throw TokenizerError.wrongType(source: source, key: key, expected: "bool", found: v.typeName)
            }
            return b
        }
        func array<T>(_ key: String, _ expected: String, _ get: (GGUFValue) -> T?) throws -> T? {
            guard let v = metadata[key] else { return nil }
            guard let a = get(v) else {
                throw TokenizerError.wrongType(source: source, key: key, expected: expected, found: v.typeName)
            }
            return a
        }

        guard let modelName = try string(Key.model) else {
            throw TokenizerError.missingKey(source: source, key: Key.model)
        }
        guard let model = Model(rawValue: modelName) else {
            throw TokenizerError.unsupportedModel(source: source, model: modelName)
        }
        guard let tokens = try array(Key.tokens, "array[string]", { $0.stringArray }) else {
            throw TokenizerError.missingKey(source: source, key: Key.tokens)
        }
        let typeCodes = try array(Key.tokenType, "array[int32]", { $0.intArray })
        let scores = try array(Key.scores, "array[float32]", { $0.floatArray })
        let merges = try array(Key.merges, "array[string]", { $0.stringArray })
        let n = tokens.count
        if let typeCodes, typeCodes.count != n {
            throw TokenizerError.lengthMismatch(source: source, key: Key.tokenType, expected: n, found: typeCodes.count)
        }

        var bos: Int?, eos: Int?, unknown: Int?
        var addBOS: Bool, addSpacePrefix: Bool
        var pre: PreTokenizer?
        switch model {
        case .sentencePiece:
            bos = 1; eos = 2; unknown = 0
            addBOS = true; addSpacePrefix = true
        case .bytePairEncoding:
            guard let merges, !merges.isEmpty else {
                throw TokenizerError.missingKey(source: source, key: Key.merges)
            }
            guard let preName = try string(Key.pre) else {
                throw TokenizerError.missingKey(source: source, key: Key.pre)
            }
            guard let p = PreTokenizer(name: preName) else {
                throw TokenizerError.unsupportedPreTokenizer(source: source, name: preName, supported: PreTokenizer.supportedNames)
            }
            pre = p
            addBOS = p.addsBOSByDefault
            addSpacePrefix = false
        }
        // Defaults that do not exist in this vocabulary are dropped, as llama.cpp does.
        bos = bos.flatMap { $0 < n ? $0 : nil }
        eos = eos.flatMap { $0 < n ? $0 : nil }
        unknown = unknown.flatMap { $0 < n ? $0 : nil }
        bos = try int(Key.bos) ?? bos
        eos = try int(Key.eos) ?? eos
        unknown = try int(Key.unknown) ?? unknown
        let padding = try int(Key.padding)
        addBOS = try bool(Key.addBOS) ?? addBOS
        let addEOS = try bool(Key.addEOS) ?? false
        addSpacePrefix = try bool(Key.addSpacePrefix) ?? addSpacePrefix

        let types = typeCodes.map { $0.map(TokenType.init(code:)) }

        // llama.cpp sets per-token attributes the file does not carry from the model's name; of
        // the tokenizers we support, only Phi-3 has any: its special tokens strip whitespace to
        // their right, except <unk>, <s> and <|endoftext|>, and </s> does too.
        var rightStrip = Set<Int>()
        let generalName = (metadata["general.name"]?.stringValue ?? "").lowercased()
        if generalName.contains("phi-3") || generalName.contains("phi3") {
            for (id, t) in (types ?? []).enumerated() where t == .control || t == .userDefined || t == .unknown {
                rightStrip.insert(id)
            }
            if let id = tokens.lastIndex(of: "</s>") { rightStrip.insert(id) }
            for text in ["<unk>", "<s>", "<|endoftext|>"] {
                if let id = tokens.lastIndex(of: text) { rightStrip.remove(id) }
            }
        }

        try self.init(model: model, tokens: tokens, types: types,
                      scores: scores, merges: merges ?? [], bosID: bos, eosID: eos, unknownID: unknown,
                      paddingID: padding, addBOS: addBOS, addEOS: addEOS, addSpacePrefix: addSpacePrefix,
                      preTokenizer: pre, rightStripIDs: rightStrip, source: source)
    }
}
