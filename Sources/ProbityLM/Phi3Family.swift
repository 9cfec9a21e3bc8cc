// Phi-3 (`general.architecture = phi3`; llama.cpp src/models/phi3.cpp). The Llama block with q, k,
// v fused in one `attn_qkv` tensor (rows q, then k, then v) and gate and up fused in one `ffn_up`
// of 2·ffn rows (gate first: llama.cpp's swiglu takes silu of the first half times the second),
// RoPE on the halves of each head (GGML "neox"); tokenizer: SentencePiece (Llama 2's with Phi-3's
// added tokens). `attention.sliding_window` is read by llama.cpp but not used (its phi3 loader turns
// the window off), so it is ignored here too. The 128k-context files' LongRoPE factors
// (`rope_factors_long/short`) are refused.

extension DecoderFamily {
    public static let phi3 = DecoderFamily(
        architecture: "phi3", ropeLayout: .halves, headNorms: false, fusedGateUp: true,
        ropeFrequencyFactors: false,
        refusedTensors: [("rope_factors_long.weight", "LongRoPE scaling (128k-context Phi-3) is not implemented"),
                         ("rope_factors_short.weight", "LongRoPE scaling (128k-context Phi-3) is not implemented")])
}
