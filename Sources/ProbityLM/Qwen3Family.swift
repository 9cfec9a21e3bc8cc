// Qwen3 dense models (`general.architecture = qwen3`; llama.cpp src/models/qwen3.cpp). The Llama
// block without biases, with RMSNorm over each q and k head (`attn_q_norm`, `attn_k_norm`, headDim
// wide, before RoPE), RoPE on the halves of each head (GGML "neox"), and a head size that need not
// be width / heads (`attention.key_length`: Qwen3 0.6B has 16 heads of 128 over a width of 1024);
// tokenizer: byte-level BPE with the `qwen2` pre-tokenizer.

extension DecoderFamily {
    public static let qwen3 = DecoderFamily(
        architecture: "qwen3", ropeLayout: .halves, headNorms: true, fusedGateUp: false,
        ropeFrequencyFactors: false, refusedTensors: [])
}
