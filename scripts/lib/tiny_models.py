"""Small random-weight GGUF models of the families llama.cpp runs, with their real tokenizers.

    tiny_models.py VOCAB_DIR OUT_DIR [FAMILY...]

Writes OUT_DIR/<family>.gguf for each family (all when none is named). Each file has the
architecture name, metadata keys and tensor names that llama.cpp's converter (convert_hf_to_gguf.py)
writes for that family, tiny shapes, deterministic weights, and the whole tokenizer (every
`tokenizer.*` key) of one of llama.cpp's test vocabularies (VOCAB_DIR/ggml-vocab-<name>.gguf,
fetched by scripts/setup). Nothing is trimmed: the vocabulary-sized embedding makes the files
5-40 MB, so they are generated into the cache rather than committed (docs/architectures.md).

Weights come from SplitMix64 (integer arithmetic, one stream per tensor seeded from the family's
seed and the tensor's name), so the bytes are the same on every machine; Tests/Fixtures/families
pins each file's sha256. Imported by families_reference.py for the shapes.
"""
import math
import os
import sys
import zlib

import numpy as np
import gguf

MASK = (1 << 64) - 1


def splitmix64(seed, n):
    """The first n outputs of SplitMix64 seeded with `seed`, as uint64."""
    with np.errstate(over="ignore"):
        i = np.arange(1, n + 1, dtype=np.uint64)
        z = np.uint64(seed & MASK) + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def uniform(seed, shape, scale):
    """Values uniform in [-scale·√3, scale·√3) (standard deviation `scale`), float64."""
    n = int(np.prod(shape))
    u = (splitmix64(seed, n) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    return ((2 * u - 1) * math.sqrt(3) * scale).reshape(shape)


# One entry per family: architecture, vocabulary, shapes and what the converter writes.
#   tied: no output.weight (the head is token_embd); bias: attn_q/k/v biases; qk_norm: attn_q_norm and
#   attn_k_norm; fused: attn_qkv and a 2·ffn-row ffn_up (gate then up); head_dim: written as
#   attention.key_length/value_length when it is not width/heads; llama3_rope: rope_freqs.weight
#   from Llama 3's rope scaling (factor, low, high, original context); types: GGML type per tensor
#   kind (norms and biases are F32).
FAMILIES = {
    "qwen2": dict(arch="qwen2", vocab="qwen2", seed=0x5157454E32, width=64, blocks=2, heads=4, kv_heads=2,
                  head_dim=16, ffn=128, rope_base=1_000_000.0, eps=1e-6, context=32768, tied=True,
                  bias=True, types=dict(embd="Q8_0", attn="F16", ffn="F16")),
    "qwen3": dict(arch="qwen3", vocab="qwen2", seed=0x5157454E33, width=64, blocks=3, heads=4, kv_heads=2,
                  head_dim=32, ffn=128, rope_base=1_000_000.0, eps=1e-6, context=40960, tied=True,
                  qk_norm=True, types=dict(embd="Q8_0", attn="F16", ffn="Q8_0")),
    "llama3": dict(arch="llama", vocab="llama-bpe", seed=0x4C4C414D41, width=64, blocks=2, heads=4,
                   kv_heads=2, head_dim=16, ffn=160, rope_base=500_000.0, eps=1e-5, context=131072,
                   llama3_rope=(32.0, 1.0, 4.0, 8192), vocab_size=True, rope_dims=True,
                   types=dict(embd="F16", output="Q8_0", attn="F16", ffn="F16")),
    "mistral": dict(arch="llama", vocab="llama-spm", seed=0x4D495354, width=64, blocks=2, heads=4,
                    kv_heads=1, head_dim=16, ffn=192, rope_base=1_000_000.0, eps=1e-5, context=32768,
                    vocab_size=True, rope_dims=True,
                    types=dict(embd="F16", output="F16", attn="F16", ffn="Q8_0")),
    "phi3": dict(arch="phi3", vocab="phi-3", seed=0x50484933, width=64, blocks=2, heads=4, kv_heads=2,
                 head_dim=16, ffn=128, rope_base=10_000.0, eps=1e-5, context=4096, fused=True,
                 rope_dims=True, sliding_window=2047, original_context=4096,
                 types=dict(embd="F16", output="F16", attn="F16", ffn="F16")),
}


def llama3_rope_factors(base, dim, factor, low_freq_factor, high_freq_factor, old_context):
    """The per-frequency divisors llama.cpp's converter stores as rope_freqs.weight for rope_type llama3."""
    freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    low_wavelen = old_context / low_freq_factor
    high_wavelen = old_context / high_freq_factor
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def tensors(spec, vocab_size):
    """(name, float64 array in row-major (rows, cols) order, type name) for every tensor, in file order."""
    f = spec
    w, hd = f["width"], f["head_dim"]
    q, kv = f["heads"] * hd, f["kv_heads"] * hd
    seed = f["seed"]
    types = f["types"]

    def rnd(name, shape, scale):
        return uniform(seed ^ zlib.crc32(name.encode()), shape, scale)

    def norm(name, n):
        return 1.0 + rnd(name, (n,), 0.2)

    out = [("token_embd.weight", rnd("token_embd.weight", (vocab_size, w), 0.6), types["embd"])]
    if f.get("llama3_rope"):
        factor, low, high, old = f["llama3_rope"]
        out.append(("rope_freqs.weight", llama3_rope_factors(f["rope_base"], hd, factor, low, high, old)
                    .astype(np.float64), "F32"))
    for l in range(f["blocks"]):
        p = f"blk.{l}."
        out.append((p + "attn_norm.weight", norm(p + "attn_norm.weight", w), "F32"))
        if f.get("fused"):
            out.append((p + "attn_qkv.weight", rnd(p + "attn_qkv.weight", (q + 2 * kv, w), 1 / math.sqrt(w)),
                        types["attn"]))
        else:
            for t, rows in (("attn_q", q), ("attn_k", kv), ("attn_v", kv)):
                out.append((p + t + ".weight", rnd(p + t + ".weight", (rows, w), 1 / math.sqrt(w)), types["attn"]))
            if f.get("bias"):
                for t, rows in (("attn_q", q), ("attn_k", kv), ("attn_v", kv)):
                    out.append((p + t + ".bias", rnd(p + t + ".bias", (rows,), 0.5), "F32"))
        if f.get("qk_norm"):
            out.append((p + "attn_q_norm.weight", norm(p + "attn_q_norm.weight", hd), "F32"))
            out.append((p + "attn_k_norm.weight", norm(p + "attn_k_norm.weight", hd), "F32"))
        out.append((p + "attn_output.weight", rnd(p + "attn_output.weight", (w, q), 1 / math.sqrt(q)), types["attn"]))
        out.append((p + "ffn_norm.weight", norm(p + "ffn_norm.weight", w), "F32"))
        ffn = f["ffn"]
        if f.get("fused"):
            out.append((p + "ffn_up.weight", rnd(p + "ffn_up.weight", (2 * ffn, w), 1 / math.sqrt(w)), types["ffn"]))
        else:
            out.append((p + "ffn_gate.weight", rnd(p + "ffn_gate.weight", (ffn, w), 1 / math.sqrt(w)), types["ffn"]))
            out.append((p + "ffn_up.weight", rnd(p + "ffn_up.weight", (ffn, w), 1 / math.sqrt(w)), types["ffn"]))
        out.append((p + "ffn_down.weight", rnd(p + "ffn_down.weight", (w, ffn), 1 / math.sqrt(ffn)), types["ffn"]))
    out.append(("output_norm.weight", norm("output_norm.weight", w), "F32"))
    if not f.get("tied"):
        out.append(("output.weight", rnd("output.weight", (vocab_size, w), 0.6), types["output"]))
    return out


def write(family, vocab_dir, out_path):
    f = FAMILIES[family]
    arch = f["arch"]
    reader = gguf.GGUFReader(os.path.join(vocab_dir, f"ggml-vocab-{f['vocab']}.gguf"))
    vocab_size = len(reader.fields["tokenizer.ggml.tokens"].data)

    part = out_path + ".part"
    writer = gguf.GGUFWriter(part, arch)
    writer.add_name(f"tiny-{family}")
    writer.add_context_length(f["context"])
    writer.add_embedding_length(f["width"])
    writer.add_block_count(f["blocks"])
    writer.add_feed_forward_length(f["ffn"])
    writer.add_head_count(f["heads"])
    writer.add_head_count_kv(f["kv_heads"])
    writer.add_rope_freq_base(f["rope_base"])
    writer.add_layer_norm_rms_eps(f["eps"])
    if f["head_dim"] != f["width"] // f["heads"]:
        writer.add_key_length(f["head_dim"])
        writer.add_value_length(f["head_dim"])
    if f.get("vocab_size"):
        writer.add_vocab_size(vocab_size)
    if f.get("rope_dims"):
        writer.add_rope_dimension_count(f["head_dim"])
    if "original_context" in f:
        writer.add_rope_scaling_orig_ctx_len(f["original_context"])
    if "sliding_window" in f:
        writer.add_sliding_window(f["sliding_window"])
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    # The tokenizer, every key as the vocabulary file has it.
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(key, field.contents(), vtype, sub_type=field.types[-1])
        else:
            writer.add_key_value(key, field.contents(), vtype)

    for name, data, type_name in tensors(f, vocab_size):
        qtype = gguf.GGMLQuantizationType[type_name]
        if qtype == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(name, data.astype(np.float32))
        elif qtype == gguf.GGMLQuantizationType.F16:
            writer.add_tensor(name, data.astype(np.float16))
        else:
            packed = gguf.quants.quantize(data.astype(np.float32), qtype)
            writer.add_tensor(name, packed, raw_dtype=qtype)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(part, out_path)


def main():
    if len(sys.argv) < 3:
        raise SystemExit("usage: tiny_models.py VOCAB_DIR OUT_DIR [FAMILY...]")
    vocab_dir, out_dir = sys.argv[1], sys.argv[2]
    names = sys.argv[3:] or list(FAMILIES)
    for n in names:
        if n not in FAMILIES:
            raise SystemExit(f"tiny_models.py: unknown family '{n}' (known: {', '.join(FAMILIES)})")
    os.makedirs(out_dir, exist_ok=True)
    for n in names:
        write(n, vocab_dir, os.path.join(out_dir, f"{n}.gguf"))


if __name__ == "__main__":
    main()
