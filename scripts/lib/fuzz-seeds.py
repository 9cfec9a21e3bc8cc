#!/usr/bin/env python3
"""Writes the hand-made seeds of Fuzz/corpus (the other seeds are copies of repository files):
a tiny whole llama GGUF and a tiny Gemma 3 one with a byte-level BPE vocabulary, LoRA adapters for the llama one, a control vector, small safetensors and
.npy files, chat messages, tokenizer texts, and the golden default report trimmed to one case. Deterministic; rerun to regenerate.
Usage: scripts/lib/fuzz-seeds.py CORPUS_DIR"""
import json, os, struct, sys

out = sys.argv[1]

def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

# --- GGUF (ggml docs/gguf.md, v3, little-endian) ------------------------------------------
def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b

def gval(v):
    kind, x = v
    if kind == "u32": return struct.pack("<I", 4) + struct.pack("<I", x)
    if kind == "i32": return struct.pack("<I", 5) + struct.pack("<i", x)
    if kind == "f32": return struct.pack("<I", 6) + struct.pack("<f", x)
    if kind == "bool": return struct.pack("<I", 7) + bytes([1 if x else 0])
    if kind == "str": return struct.pack("<I", 8) + gstr(x)
    if kind == "strs": return struct.pack("<IIQ", 9, 8, len(x)) + b"".join(gstr(s) for s in x)
    if kind == "i32s": return struct.pack("<IIQ", 9, 5, len(x)) + b"".join(struct.pack("<i", i) for i in x)
    if kind == "f32s": return struct.pack("<IIQ", 9, 6, len(x)) + b"".join(struct.pack("<f", f) for f in x)
    raise ValueError(kind)

def gguf(kv, tensors, alignment=32):
    """tensors: (name, shape in ggml order, float values), stored as F32."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for k, v in kv:
        head += gstr(k) + gval(v)
    data, infos = b"", b""
    for name, shape, values in tensors:
        pad = (-len(data)) % alignment
        data += b"\0" * pad
        infos += gstr(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
        infos += struct.pack("<IQ", 0, len(data))
        data += b"".join(struct.pack("<f", x) for x in values)
    body = head + infos
    return body + b"\0" * ((-len(body)) % alignment) + data

def values(n, k):
    return [((i * 7 + k * 13) % 17 - 8) / 16.0 for i in range(n)]

width, ffn, heads, kv_heads, head_dim, blocks = 8, 16, 2, 1, 4, 1
tokens = ["a", "b", "c", "ab", "Ġ", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
vocab = len(tokens)
tok_kv = [
    ("tokenizer.ggml.model", ("str", "gpt2")),
    ("tokenizer.ggml.pre", ("str", "smollm")),
    ("tokenizer.ggml.tokens", ("strs", tokens)),
    ("tokenizer.ggml.token_type", ("i32s", [1, 1, 1, 1, 1, 3, 3, 3])),
    ("tokenizer.ggml.merges", ("strs", ["a b"])),
    ("tokenizer.ggml.bos_token_id", ("u32", 6)),
    ("tokenizer.ggml.eos_token_id", ("u32", 7)),
]
model_kv = [
    ("general.architecture", ("str", "llama")),
    ("general.name", ("str", "tiny")),
    ("llama.block_count", ("u32", blocks)),
    ("llama.context_length", ("u32", 16)),
    ("llama.embedding_length", ("u32", width)),
    ("llama.feed_forward_length", ("u32", ffn)),
    ("llama.attention.head_count", ("u32", heads)),
    ("llama.attention.head_count_kv", ("u32", kv_heads)),
    ("llama.rope.dimension_count", ("u32", head_dim)),
    ("llama.rope.freq_base", ("f32", 10000.0)),
    ("llama.attention.layer_norm_rms_epsilon", ("f32", 1e-5)),
]
model_tensors = [("token_embd.weight", [width, vocab], values(width * vocab, 1)),
                 ("output.weight", [width, vocab], values(width * vocab, 2)),
                 ("output_norm.weight", [width], [1.0] * width)]
for l in range(blocks):
    p = f"blk.{l}."
    model_tensors += [
        (p + "attn_norm.weight", [width], [1.0] * width),
        (p + "ffn_norm.weight", [width], [1.0] * width),
        (p + "attn_q.weight", [width, heads * head_dim], values(width * heads * head_dim, 3)),
        (p + "attn_k.weight", [width, kv_heads * head_dim], values(width * kv_heads * head_dim, 4)),
        (p + "attn_v.weight", [width, kv_heads * head_dim], values(width * kv_heads * head_dim, 5)),
        (p + "attn_output.weight", [heads * head_dim, width], values(width * heads * head_dim, 6)),
        (p + "ffn_gate.weight", [width, ffn], values(width * ffn, 7)),
        (p + "ffn_up.weight", [width, ffn], values(width * ffn, 8)),
        (p + "ffn_down.weight", [ffn, width], values(width * ffn, 9)),
    ]
put("gguf", "tiny-llama.gguf", gguf(model_kv + tok_kv, model_tensors))
put("gguf", "vocab-only.gguf", gguf(tok_kv, []))
# A tiny Gemma 3: QK-norm, post-norms, a window of 2, every 2nd block global, tied head.
g_blocks = 2
gemma_kv = [
    ("general.architecture", ("str", "gemma3")),
    ("gemma3.block_count", ("u32", g_blocks)),
    ("gemma3.context_length", ("u32", 16)),
    ("gemma3.embedding_length", ("u32", width)),
    ("gemma3.feed_forward_length", ("u32", ffn)),
    ("gemma3.attention.head_count", ("u32", heads)),
    ("gemma3.attention.head_count_kv", ("u32", kv_heads)),
    ("gemma3.attention.key_length", ("u32", head_dim)),
    ("gemma3.attention.value_length", ("u32", head_dim)),
    ("gemma3.attention.sliding_window", ("u32", 2)),
    ("gemma3.attention.sliding_window_pattern", ("u32", 2)),
    ("gemma3.rope.freq_base", ("f32", 1000000.0)),
    ("gemma3.attention.layer_norm_rms_epsilon", ("f32", 1e-6)),
]
gemma_tensors = [("token_embd.weight", [width, vocab], values(width * vocab, 1)),
                 ("output_norm.weight", [width], [1.0] * width)]
for l in range(g_blocks):
    p = f"blk.{l}."
    gemma_tensors += [
        (p + "attn_norm.weight", [width], [1.0] * width),
        (p + "post_attention_norm.weight", [width], [1.0] * width),
        (p + "ffn_norm.weight", [width], [1.0] * width),
        (p + "post_ffw_norm.weight", [width], [1.0] * width),
        (p + "attn_q_norm.weight", [head_dim], [1.0] * head_dim),
        (p + "attn_k_norm.weight", [head_dim], [1.0] * head_dim),
        (p + "attn_q.weight", [width, heads * head_dim], values(width * heads * head_dim, 3)),
        (p + "attn_k.weight", [width, kv_heads * head_dim], values(width * kv_heads * head_dim, 4)),
        (p + "attn_v.weight", [width, kv_heads * head_dim], values(width * kv_heads * head_dim, 5)),
        (p + "attn_output.weight", [heads * head_dim, width], values(width * heads * head_dim, 6)),
        (p + "ffn_gate.weight", [width, ffn], values(width * ffn, 7)),
        (p + "ffn_up.weight", [width, ffn], values(width * ffn, 8)),
        (p + "ffn_down.weight", [ffn, width], values(width * ffn, 9)),
    ]
put("gguf", "tiny-gemma3.gguf", gguf(gemma_kv + tok_kv, gemma_tensors))
put("gguf", "spm-vocab.gguf", gguf([
    ("tokenizer.ggml.model", ("str", "llama")),
    ("tokenizer.ggml.tokens", ("strs", ["<unk>", "<s>", "</s>", "<0x41>", "▁", "a", "▁a"])),
    ("tokenizer.ggml.scores", ("f32s", [0, 0, 0, 0, -1, -2, -3])),
    ("tokenizer.ggml.token_type", ("i32s", [2, 3, 3, 6, 1, 1, 1])),
    ("tokenizer.ggml.bos_token_id", ("u32", 1)),
    ("tokenizer.ggml.eos_token_id", ("u32", 2)),
    ("tokenizer.ggml.unknown_token_id", ("u32", 0)),
], []))
put("gguf", "alignment-64.gguf", gguf([("general.alignment", ("u32", 64)), ("general.architecture", ("str", "llama"))],
                                      [("a", [4], [1, 2, 3, 4]), ("b", [2, 2], [5, 6, 7, 8])], alignment=64))

# LoRA adapters for the tiny model above (the lora target checks them against it): pairs
# <base>.lora_a [inputs, rank] and <base>.lora_b [rank, outputs], as convert_lora_to_gguf.py writes.
def lora(alpha, rank, targets):
    kv = [("general.type", ("str", "adapter")), ("general.architecture", ("str", "llama")),
          ("adapter.type", ("str", "lora")), ("adapter.lora.alpha", ("f32", alpha))]
    shapes = dict((name, shape) for name, shape, _ in model_tensors)
    tensors = []
    for i, target in enumerate(targets):
        inputs, outputs = shapes[target]
        tensors += [(target + ".lora_a", [inputs, rank], values(inputs * rank, 20 + i)),
                    (target + ".lora_b", [rank, outputs], values(rank * outputs, 40 + i))]
    return gguf(kv, tensors)

put("lora", "rank2.gguf", lora(4.0, 2, ["blk.0.attn_q.weight", "blk.0.attn_v.weight", "blk.0.ffn_up.weight",
                                        "blk.0.ffn_down.weight", "output.weight"]))
put("lora", "alpha0-rank1.gguf", lora(0.0, 1, ["blk.0.attn_output.weight", "blk.0.ffn_gate.weight"]))

put("control-vector", "two-layers.gguf", gguf(
    [("general.architecture", ("str", "controlvector")), ("controlvector.model_hint", ("str", "llama")),
     ("controlvector.layer_count", ("u32", 2))],
    [("direction.1", [576], values(576, 1)), ("direction.2", [576], values(576, 2))]))
put("control-vector", "narrow.gguf", gguf([("controlvector.model_hint", ("str", "llama"))],
                                          [("direction.3", [8], values(8, 3))]))

# --- safetensors -----------------------------------------------------------------------------
def safetensors(header, data):
    h = header.encode()
    h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + data

put("safetensors", "mixed.safetensors", safetensors(
    '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},'
    '"b":{"dtype":"F16","shape":[3],"data_offsets":[16,22]},"c":{"dtype":"BF16","shape":[1],"data_offsets":[22,24]},'
    '"d":{"dtype":"F64","shape":[1],"data_offsets":[24,32]},"e":{"dtype":"I8","shape":[0],"data_offsets":[32,32]}}',
    struct.pack("<4f", 1, 2, 3, 4) + bytes([0, 60, 0, 188, 255, 123, 128, 63]) + struct.pack("<d", 2.5)))
put("safetensors", "empty.safetensors", safetensors("{}", b""))

# --- npy (format 1.0 and 2.0) ----------------------------------------------------------------
def npy(descr, shape, payload, version=1):
    d = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    pre = 10 if version == 1 else 12
    d += " " * ((-(pre + len(d) + 1)) % 64) + "\n"
    size = struct.pack("<H", len(d)) if version == 1 else struct.pack("<I", len(d))
    return b"\x93NUMPY" + bytes([version, 0]) + size + d.encode() + payload

put("npy", "f4-2x3.npy", npy("<f4", "(2, 3)", struct.pack("<6f", *range(6))))
put("npy", "f8-vector.npy", npy("<f8", "(4,)", struct.pack("<4d", 1, -2, 3.5, 1e300)))
put("npy", "scalar-v2.npy", npy("<f4", "()", struct.pack("<f", 7), version=2))

# --- chat messages ---------------------------------------------------------------------------
put("chat-messages", "object.json",
    '{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi <|im_end|>"}]}')
put("chat-messages", "array.json",
    '[{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}, {"role": "user", "content": "\\u6771\\u4eac \\ud83d\\ude80"}]')

# --- tokenizer texts -------------------------------------------------------------------------
for i, text in enumerate(["Hello, world!", "  leading and trailing  \n\n\ttabs",
                          "東京 🚀 naïve café", "<|im_start|>user\nHi<|im_end|>\n<s></s>",
                          "x = [1, 2, 3]; // 12345678901234567890", "\u00a0\u200b\u2028\r\n'''s 've 'LL"]):
    for target in ("tokenizer-bpe", "tokenizer-spm"):
        put(target, f"text-{i}.txt", text)

# --- report: the golden default report (Tests/Fixtures/reports) trimmed to its first case ------
# Rerun after the report schema changes, or the seed is refused at its schema_version.
golden = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "Fixtures", "reports", "default.json")
with open(golden) as f:
    report = json.load(f)
case = report["cases"][0]
for side in ("baseline", "steered"):
    if isinstance(case.get(side), dict) and "features" in case[side]:
        case[side]["features"] = case[side]["features"][:3]
named = json.dumps(case)
report["cases"] = [case]
report["rules"] = [r for r in report["rules"] if '"%s"' % r["id"] in named][:3] or report["rules"][:1]
put("report", "trimmed.json", json.dumps(report, sort_keys=True))
