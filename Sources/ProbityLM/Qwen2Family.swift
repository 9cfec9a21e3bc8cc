// Qwen2 and Qwen2.5 (`general.architecture = qwen2`; llama.cpp src/models/qwen2.cpp). The Llama
// block with q, k, v biases (`blk.L.attn_{q,k,v}.bias`, which every Qwen2 file has) and RoPE on
// the halves of each head (GGML "neox"); tokenizer: byte-level BPE with the `qwen2` pre-tokenizer.

extension DecoderFamily {
    public static let qwen2 = DecoderFamily(
        architecture: "qwen2", ropeLayout: .halves, headNorms: false, fusedGateUp: false,
        ropeFrequencyFactors: false, refusedTensors: [])
}
