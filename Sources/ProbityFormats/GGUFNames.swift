// GGUF metadata keys and tensor names, one table each, as llama.cpp writes them
// (gguf-py constants.py `Keys` and `MODEL_TENSOR` names; llama-arch.cpp).

/// Metadata keys. Architecture-specific keys take the value of `general.architecture`.
public enum GGUFKey {
    // General.
    public static let architecture = "general.architecture"
    public static let alignment = "general.alignment"
    public static let name = "general.name"
    public static let fileType = "general.file_type"
    public static let quantizationVersion = "general.quantization_version"
    /// `model` or `adapter` (llama.cpp's `general.type`; absent in most model files).
    public static let fileKind = "general.type"

    // Adapters (llama.cpp convert_lora_to_gguf.py).
    /// `lora` for a LoRA adapter.
    public static let adapterType = "adapter.type"
    /// LoRA's alpha (float32); the update is scaled by alpha / rank, or by 1 when alpha is 0.
    public static let adapterLoRAAlpha = "adapter.lora.alpha"
    /// Activated LoRA's invocation tokens (not supported: such adapters apply only after them).
    public static let adapterALoRAInvocationTokens = "adapter.alora.invocation_tokens"

    // Hyperparameters of the architecture `arch`.
    public static func blockCount(arch: String) -> String { "\(arch).block_count" }
    public static func contextLength(arch: String) -> String { "\(arch).context_length" }
    public static func embeddingLength(arch: String) -> String { "\(arch).embedding_length" }
    public static func feedForwardLength(arch: String) -> String { "\(arch).feed_forward_length" }
    public static func headCount(arch: String) -> String { "\(arch).attention.head_count" }
    public static func headCountKV(arch: String) -> String { "\(arch).attention.head_count_kv" }
    public static func keyLength(arch: String) -> String { "\(arch).attention.key_length" }
    public static func valueLength(arch: String) -> String { "\(arch).attention.value_length" }
    public static func rmsEpsilon(arch: String) -> String { "\(arch).attention.layer_norm_rms_epsilon" }
    public static func layerNormEpsilon(arch: String) -> String { "\(arch).attention.layer_norm_epsilon" }
    public static func ropeFreqBase(arch: String) -> String { "\(arch).rope.freq_base" }
    public static func ropeDimensionCount(arch: String) -> String { "\(arch).rope.dimension_count" }
    public static func ropeScalingType(arch: String) -> String { "\(arch).rope.scaling.type" }
    public static func ropeScalingFactor(arch: String) -> String { "\(arch).rope.scaling.factor" }
    public static func vocabSize(arch: String) -> String { "\(arch).vocab_size" }
    public static func slidingWindow(arch: String) -> String { "\(arch).attention.sliding_window" }
    /// Every this-many blocks one attends globally, the rest in the sliding window (not in every file).
    public static func slidingWindowPattern(arch: String) -> String { "\(arch).attention.sliding_window_pattern" }
    /// The RoPE base of sliding-window blocks, when it differs from `rope.freq_base`.
    public static func ropeFreqBaseSWA(arch: String) -> String { "\(arch).rope.freq_base_swa" }
    public static func finalLogitSoftcapping(arch: String) -> String { "\(arch).final_logit_softcapping" }
    public static func attnLogitSoftcapping(arch: String) -> String { "\(arch).attn_logit_softcapping" }

    // Tokenizer.
    public static let tokenizerModel = "tokenizer.ggml.model"
    public static let tokenizerPre = "tokenizer.ggml.pre"
    public static let tokens = "tokenizer.ggml.tokens"
    public static let tokenTypes = "tokenizer.ggml.token_type"
    public static let scores = "tokenizer.ggml.scores"
    public static let merges = "tokenizer.ggml.merges"
    public static let bosTokenID = "tokenizer.ggml.bos_token_id"
    public static let eosTokenID = "tokenizer.ggml.eos_token_id"
    public static let eotTokenID = "tokenizer.ggml.eot_token_id"
    public static let eomTokenID = "tokenizer.ggml.eom_token_id"
    public static let unknownTokenID = "tokenizer.ggml.unknown_token_id"
    /// Spelled this way in llama.cpp and in files.
    public static let separatorTokenID = "tokenizer.ggml.seperator_token_id"
    public static let paddingTokenID = "tokenizer.ggml.padding_token_id"
    public static let maskTokenID = "tokenizer.ggml.mask_token_id"
    public static let addBOS = "tokenizer.ggml.add_bos_token"
    public static let addEOS = "tokenizer.ggml.add_eos_token"
    public static let addSpacePrefix = "tokenizer.ggml.add_space_prefix"
    public static let chatTemplate = "tokenizer.chat_template"

    /// The special-token id keys with a short role name, in the order `inspect` lists them.
    public static let specialTokenIDs: [(role: String, key: String)] = [
        ("bos", bosTokenID), ("eos", eosTokenID), ("eot", eotTokenID), ("eom", eomTokenID),
        ("unknown", unknownTokenID), ("separator", separatorTokenID), ("padding", paddingTokenID),
        ("mask", maskTokenID),
    ]
}

/// Tensor names. `block` is the zero-based transformer block index.
public enum GGUFTensorName {
    public static let tokenEmbedding = "token_embd.weight"
    public static let outputNorm = "output_norm.weight"
    /// The LM head; absent when it is tied to `tokenEmbedding`.
    public static let output = "output.weight"
    public static let ropeFrequencies = "rope_freqs.weight"

    public static func attnNorm(block: Int) -> String { "blk.\(block).attn_norm.weight" }
    public static func attnQ(block: Int) -> String { "blk.\(block).attn_q.weight" }
    public static func attnK(block: Int) -> String { "blk.\(block).attn_k.weight" }
    public static func attnV(block: Int) -> String { "blk.\(block).attn_v.weight" }
    public static func attnOutput(block: Int) -> String { "blk.\(block).attn_output.weight" }
    public static func attnQNorm(block: Int) -> String { "blk.\(block).attn_q_norm.weight" }
    public static func attnKNorm(block: Int) -> String { "blk.\(block).attn_k_norm.weight" }
    public static func ffnNorm(block: Int) -> String { "blk.\(block).ffn_norm.weight" }
    /// Norms after the attention and the MLP, before each residual add (Gemma 2 and 3).
    public static func attnPostNorm(block: Int) -> String { "blk.\(block).post_attention_norm.weight" }
    public static func ffnPostNorm(block: Int) -> String { "blk.\(block).post_ffw_norm.weight" }
    public static func ffnGate(block: Int) -> String { "blk.\(block).ffn_gate.weight" }
    public static func ffnUp(block: Int) -> String { "blk.\(block).ffn_up.weight" }
    public static func ffnDown(block: Int) -> String { "blk.\(block).ffn_down.weight" }

    /// A LoRA adapter's factors of the base tensor `target`: A (rank × inputs) and B (outputs × rank).
    public static func loraA(_ target: String) -> String { target + loraASuffix }
    public static func loraB(_ target: String) -> String { target + loraBSuffix }
    public static let loraASuffix = ".lora_a"
    public static let loraBSuffix = ".lora_b"

    /// A control vector's direction added to the residual leaving block `layer` (llama.cpp
    /// numbers these from 1; see docs/DESIGN.md).
    public static func controlVector(layer: Int) -> String { "direction.\(layer)" }
}
