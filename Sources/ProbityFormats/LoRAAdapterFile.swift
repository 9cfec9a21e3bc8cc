// A LoRA adapter in llama.cpp's GGUF layout (convert_lora_to_gguf.py; read by src/llama-adapter.cpp):
// `general.type = adapter`, `adapter.type = lora`, `adapter.lora.alpha`, and for each adapted base
// tensor T a pair `T.lora_a` (ggml shape [inputs, rank]) and `T.lora_b` (ggml shape [rank, outputs]).

import ProbityTensor

/// A LoRA adapter file, checked on its own at open and against a base model with `validate(against:)`.
/// Every check names the file, the tensor and what was expected vs found.
public struct LoRAAdapterFile: Sendable {
    /// One adapted base tensor: W (outputs × inputs) gains scale · B·A, A (rank × inputs) and
    /// B (outputs × rank) in math order.
    public struct Pair: Sendable, Equatable {
        /// The base tensor's name, e.g. `blk.3.attn_q.weight`.
        public let target: String
        public let a: GGUFTensorInfo
        public let b: GGUFTensorInfo
        public var rank: Int { b.shape[0] }
        public var inputs: Int { a.shape[0] }
        public var outputs: Int { b.shape[1] }
    }

    public let file: GGUFFile
    /// `general.architecture`: the base model's architecture.
    public let architecture: String
    /// `adapter.lora.alpha`; 0 means "no alpha/rank factor", as llama.cpp reads it.
    public let alpha: Float
    /// The adapted tensors, sorted by target name.
    public let pairs: [Pair]
    public var path: String { file.path }

    /// Opens and checks the adapter at `path`.
    public init(path: String) throws {
        try self.init(try GGUFFile(path: path))
    }

    /// Checks an open GGUF file as a LoRA adapter: its metadata, that its tensors come in
    /// complete A/B pairs of matrices with a shared rank, of types Probity computes with.
    public init(_ file: GGUFFile) throws {
        let path = file.path
        func bad(_ tensor: String? = nil, _ expected: String, _ found: String) -> FormatError {
            .badAdapter(path: path, tensor: tensor, expected: expected, found: found)
        }
        func string(_ key: String, expected: String) throws -> String {
            guard let v = file.value(key) else { throw FormatError.missingKey(path: path, key: key) }
            guard let s = v.stringValue else {
                throw FormatError.wrongValueType(path: path, key: key, expected: expected, found: "\(v.summary()) (\(v.typeName))")
            }
            return s
        }
        let kind = try string(GGUFKey.fileKind, expected: "the string 'adapter'")
        guard kind == "adapter" else {
            throw FormatError.wrongValueType(path: path, key: GGUFKey.fileKind, expected: "'adapter' (a LoRA adapter file)",
                                             found: "'\(kind)'")
        }
        let adapterType = try string(GGUFKey.adapterType, expected: "the string 'lora'")
        guard adapterType == "lora" else {
            throw FormatError.wrongValueType(path: path, key: GGUFKey.adapterType, expected: "'lora'", found: "'\(adapterType)'")
        }
        architecture = try string(GGUFKey.architecture, expected: "a string")
        // llama.cpp reads alpha with gguf_get_val_f32, which accepts only float32.
        guard let alphaValue = file.value(GGUFKey.adapterLoRAAlpha) else {
            throw FormatError.missingKey(path: path, key: GGUFKey.adapterLoRAAlpha)
        }
        guard case .float32(let alpha) = alphaValue, alpha.isFinite else {
            throw FormatError.wrongValueType(path: path, key: GGUFKey.adapterLoRAAlpha, expected: "a finite float32",
                                             found: "\(alphaValue.summary()) (\(alphaValue.typeName))")
        }
        self.alpha = alpha
        if file.value(GGUFKey.adapterALoRAInvocationTokens) != nil {
            throw FormatError.unsupported(path: path, what: "metadata '\(GGUFKey.adapterALoRAInvocationTokens)': activated LoRA (applied only after invocation tokens) is not supported")
        }

        var halves: [String: (a: GGUFTensorInfo?, b: GGUFTensorInfo?)] = [:]
        for t in file.tensors {
            if t.name.hasSuffix(GGUFTensorName.loraASuffix) {
                halves[String(t.name.dropLast(GGUFTensorName.loraASuffix.count)), default: (nil, nil)].a = t
            } else if t.name.hasSuffix(GGUFTensorName.loraBSuffix) {
                halves[String(t.name.dropLast(GGUFTensorName.loraBSuffix.count)), default: (nil, nil)].b = t
            } else {
                // llama.cpp skips `*_norm.weight` tensors silently; we refuse them rather than run
                // an adapter differently from how it was trained.
                throw bad(t.name, "a name ending in '.lora_a' or '.lora_b'", "another suffix")
            }
        }
        guard !halves.isEmpty else { throw bad(nil, "at least one .lora_a/.lora_b tensor pair", "no tensors") }
        var pairs: [Pair] = []
        for target in halves.keys.sorted() {
            guard let h = halves[target] else { continue }
            guard let a = h.a else { throw bad(GGUFTensorName.loraB(target), "its partner '\(GGUFTensorName.loraA(target))'", "none") }
            guard let b = h.b else { throw bad(GGUFTensorName.loraA(target), "its partner '\(GGUFTensorName.loraB(target))'", "none") }
            for t in [a, b] {
                guard t.shape.count == 2 else { throw bad(t.name, "a matrix (2 dimensions)", "shape \(t.shape)") }
                guard Dequantize.isSupported(t.type) else {
                    throw bad(t.name, "a type Probity computes with (F32, F16, BF16, Q8_0, …)", "type \(t.type.name)")
                }
            }
            // ggml order: A is [inputs, rank], B is [rank, outputs].
            guard a.shape[1] == b.shape[0] else {
                throw bad(b.name, "rank \(a.shape[1]) (lora_a's shape \(a.shape) is [inputs, rank], lora_b's [rank, outputs] in ggml order)",
                          "shape \(b.shape), rank \(b.shape[0])")
            }
            pairs.append(Pair(target: target, a: a, b: b))
        }
        self.file = file
        self.pairs = pairs
    }

    /// Checks that the adapter fits `base`: the same architecture, and every target a matrix of
    /// the base with shape [inputs, outputs] (ggml order).
    public func validate(against base: GGUFFile) throws {
        let baseArch = base.value(GGUFKey.architecture)?.stringValue ?? "(none)"
        guard architecture == baseArch else {
            throw FormatError.badAdapter(path: path, tensor: nil,
                                         expected: "general.architecture '\(baseArch)' (the base model \(base.path))",
                                         found: "'\(architecture)'")
        }
        for p in pairs {
            if p.target == GGUFTensorName.tokenEmbedding {
                // llama.cpp stores this pair transposed and applies it to the lookup, not a product.
                throw FormatError.unsupported(path: path, what: "tensor '\(p.a.name)': LoRA on the token embedding is not supported")
            }
            guard let w = base.tensor(named: p.target) else {
                throw FormatError.badAdapter(path: path, tensor: p.a.name,
                                             expected: "a base tensor '\(p.target)' in \(base.path)",
                                             found: "none (is the adapter for another model?)")
            }
            guard w.shape == [p.inputs, p.outputs] else {
                throw FormatError.badAdapter(path: path, tensor: p.a.name,
                                             expected: "lora_a [inputs, rank] and lora_b [rank, outputs] (ggml order) to fit '\(p.target)' of shape \(w.shape)",
                                             found: "lora_a \(p.a.shape), lora_b \(p.b.shape)")
            }
        }
    }

    /// The factor llama.cpp multiplies B·A·x by for an adapter applied at `scale`
    /// (llama_adapter_lora_weight::get_scale): scale · alpha / rank, or scale when alpha is 0.
    public func effectiveScale(_ pair: Pair, scale: Float) -> Float {
        alpha != 0 ? scale * alpha / Float(pair.rank) : scale
    }

    /// A pair's factor dequantized to float32, row-major in math order: A is rank × inputs,
    /// B is outputs × rank.
    public func floats(_ t: GGUFTensorInfo) throws -> [Float] {
        let count = t.elementCount
        var out = [Float](repeating: 0, count: count)
        try out.withUnsafeMutableBufferPointer { dst in
            guard let d = dst.baseAddress, let src = file.data(for: t).baseAddress else { return }
            try Dequantize.run(t.type, from: src, count: count, into: d)
        }
        return out
    }
}
