// The Llama-style decoder families llama.cpp runs with one block shape (RMSNorm → attention with
// RoPE and grouped-query heads → residual, RMSNorm → gated SiLU MLP → residual) and what each
// changes in it, as data. `LlamaModel` loads and runs every one of them; each family is described
// in its own file (Qwen2Family.swift, Qwen3Family.swift, Phi3Family.swift) and in
// docs/architectures.md.

/// How one family's files and block differ from Llama's.
public struct DecoderFamily: Sendable, Equatable {
    /// The `general.architecture` name.
    public let architecture: String
    /// Which dimensions RoPE pairs (llama.cpp's `llama_model_rope_type` for the architecture).
    let ropeLayout: RopeLayout
    /// Per-head RMSNorm of q and k before RoPE (`attn_q_norm`, `attn_k_norm`, headDim wide).
    let headNorms: Bool
    /// The MLP's gate and up projections are one `ffn_up` tensor of 2·ffn rows, gate first.
    let fusedGateUp: Bool
    /// An optional `rope_freqs.weight` (ropeDims/2 values) divides each RoPE frequency.
    let ropeFrequencyFactors: Bool
    /// Tensors llama.cpp would read for a variant we do not implement, with the reason.
    let refusedTensors: [(name: String, reason: String)]

    public static func == (a: DecoderFamily, b: DecoderFamily) -> Bool { a.architecture == b.architecture }

    /// Llama 1–3, Mistral 7B, SmolLM/SmolLM2 and other `llama` files (llama.cpp src/models/llama.cpp):
    /// RoPE on adjacent pairs; Llama 3.1+ files carry `rope_freqs.weight`, the per-frequency divisors
    /// llama.cpp's converter computes from the `llama3` rope scaling.
    public static let llama = DecoderFamily(
        architecture: "llama", ropeLayout: .adjacentPairs, headNorms: false, fusedGateUp: false,
        ropeFrequencyFactors: true,
        refusedTensors: [("rope_factors_long.weight", "LongRoPE scaling is not implemented"),
                         ("blk.0.ffn_gate_inp.weight", "mixture-of-experts blocks are not implemented")])

    /// Every family `LlamaModel` runs, by architecture name.
    static let all: [DecoderFamily] = [.llama, .qwen2, .qwen3, .phi3]
}
