"""Reference outputs for Gemma 3 270M (Q4_K_M GGUF): llama.cpp's logits and an independent float64
NumPy forward pass of the same graph, written as one small JSON fixture (Tests/Fixtures/gemma3).

    gemma3-reference.py MODEL.gguf CHITCHAT.json OUT.json

Run by scripts/gemma3-reference, which builds the llama-cpp-python environment it needs. For each
prompt it stores the text, llama.cpp's tokens (add_bos, parse special), and at the last position:
llama.cpp's top-64 logits and its logits at every 128th vocabulary id (the vector is 262,144 long,
too big to commit 20 times); the float64 pass's final normalized hidden state (ln_final), its
residual leaving block 5, and its top-64 logits. A test recomputes the float64 logits over the whole
vocabulary from the hidden state and the model's own (exactly dequantized) embedding.
"""
import json
import sys

import numpy as np
import gguf
from gguf.quants import dequantize
import llama_cpp

SAMPLE_STRIDE = 128
TOP = 64
GREEDY = 16
HOOK_BLOCK = 5

model_path, chitchat_path, out_path = sys.argv[1:4]

# --- prompts ---------------------------------------------------------------------------------
SHORT = [
    ("plain", "The capital of France is"),
    ("story", "Once upon a time, in a small village at the edge of a great forest, there lived"),
    ("facts", "Water boils at 100 degrees Celsius at sea level. At higher altitudes, the boiling point"),
    ("list", "Three reasons to learn a second language:\n1."),
    ("math", "Question: What is 17 multiplied by 23?\nAnswer: 17 × 23 ="),
    ("unicode", "Café, naïve, 東京, Москва, 😀 and ½ — all in one line: “quoted” ‘text’…"),
    ("german", "Die Hauptstadt von Deutschland ist Berlin. Die größte Stadt in Bayern ist"),
    ("japanese", "日本の首都は東京です。日本で一番高い山は"),
    ("code", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return n\n"),
    ("swift", "struct Point {\n    var x: Double\n    var y: Double\n\n    func distance(to other: Point) -> Double {\n"),
    ("chat", "<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n"),
    ("chat2", "<start_of_turn>user\nWrite a haiku about the sea.<end_of_turn>\n<start_of_turn>model\n"),
    ("spaces", "  leading spaces,\ttabs\tand   runs of   spaces\n\nand blank lines\n"),
    ("json", '{"name": "Ada Lovelace", "born": 1815, "known_for": ["Analytical Engine",'),
]
GREEDY_PROMPTS = {"plain", "story", "facts", "code"}

vocab = llama_cpp.Llama(model_path=model_path, vocab_only=True, verbose=False)


def count(text):
    return len(vocab.tokenize(text.encode(), add_bos=True, special=True))


def chitchat_texts():
    with open(chitchat_path, encoding="utf-8") as f:
        data = json.load(f)
    for key in sorted(data):
        turns = [m["text"] for part in data[key]["messages"] for m in part]
        yield "\n".join(turns)


def grow(texts, low, high):
    """Joins texts (blank line between) until the token count lands in [low, high]."""
    out = ""
    for t in texts:
        candidate = out + ("\n\n" if out else "") + t
        n = count(candidate)
        if n > high:
            continue
        out = candidate
        if n >= low:
            return out
    raise SystemExit(f"could not build a prompt of {low}-{high} tokens")


chats = list(chitchat_texts())
LONG = [
    ("chitchat_short", grow(chats[0:40], 120, 200)),
    ("chitchat_mid", grow(chats[40:120], 300, 420)),
    ("chitchat_long1", grow(chats[120:300], 600, 700)),
    ("chitchat_long2", grow(chats[300:500], 700, 800)),
    ("chitchat_long3", grow(chats[500:700], 760, 800)),
    ("chitchat_window", grow(chats[700:900], 513, 560)),
]
prompts = SHORT + LONG

# --- llama.cpp -------------------------------------------------------------------------------
llm = llama_cpp.Llama(model_path=model_path, n_ctx=1024, n_batch=512, n_ubatch=512, logits_all=True,
                      n_threads=2, n_threads_batch=2, verbose=False)
n_vocab = llm.n_vocab()
sample_ids = list(range(0, n_vocab, SAMPLE_STRIDE))

# --- float64 pass ----------------------------------------------------------------------------
reader = gguf.GGUFReader(model_path)
tensors = {t.name: t for t in reader.tensors}


def field(key):
    return reader.fields[key].contents()


def weight(name):
    t = tensors[name]
    w = dequantize(t.data, t.tensor_type)
    return np.asarray(w, dtype=np.float64).reshape([int(d) for d in reversed(t.shape)])


n_layer = field("gemma3.block_count")
width = field("gemma3.embedding_length")
n_head = field("gemma3.attention.head_count")
n_kv = field("gemma3.attention.head_count_kv")
head_dim = field("gemma3.attention.key_length")
eps = field("gemma3.attention.layer_norm_rms_epsilon")
window = field("gemma3.attention.sliding_window")
base_global = field("gemma3.rope.freq_base")
base_local = 10000.0   # llama.cpp's rope_freq_base_train_swa for gemma3
pattern = 6            # llama.cpp's set_swa_pattern(6): blocks 5, 11, 17 attend globally
scale = 1.0 / np.sqrt(head_dim)

t = tensors["token_embd.weight"]
embedding32 = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(n_vocab, width)
layers = []
for l in range(n_layer):
    p = f"blk.{l}."
    layers.append({k: weight(p + k + ".weight") for k in [
        "attn_norm", "attn_q", "attn_k", "attn_v", "attn_q_norm", "attn_k_norm", "attn_output",
        "post_attention_norm", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down", "post_ffw_norm"]})
output_norm = weight("output_norm.weight")


def rms(x, w):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, positions, base):
    # x: (n, heads, d); pairs (j, j + d/2) ("neox")
    d = x.shape[-1]
    half = d // 2
    inv = base ** (-2.0 * np.arange(half) / d)
    ang = positions[:, None] * inv[None, :]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a, b = x[..., :half], x[..., half:]
    return np.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def forward64(tokens):
    n = len(tokens)
    pos = np.arange(n, dtype=np.float64)
    x = embedding32[tokens].astype(np.float64) * np.sqrt(width)
    hook = None
    causal = pos[None, :] <= pos[:, None]
    inside = (pos[:, None] - pos[None, :]) < window
    for l, w in enumerate(layers):
        is_global = (l + 1) % pattern == 0
        h = rms(x, w["attn_norm"])
        q = (h @ w["attn_q"].T).reshape(n, n_head, head_dim)
        k = (h @ w["attn_k"].T).reshape(n, n_kv, head_dim)
        v = (h @ w["attn_v"].T).reshape(n, n_kv, head_dim)
        q = rope(rms(q, w["attn_q_norm"]), pos, base_global if is_global else base_local)
        k = rope(rms(k, w["attn_k_norm"]), pos, base_global if is_global else base_local)
        mask = causal if is_global else causal & inside
        att = np.empty((n, n_head, head_dim))
        for hd in range(n_head):
            g = hd // (n_head // n_kv)
            s = (q[:, hd, :] @ k[:, g, :].T) * scale
            s = np.where(mask, s, -np.inf)
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s /= s.sum(axis=1, keepdims=True)
            att[:, hd, :] = s @ v[:, g, :]
        o = rms(att.reshape(n, n_head * head_dim) @ w["attn_output"].T, w["post_attention_norm"])
        x = x + o
        h = rms(x, w["ffn_norm"])
        a = gelu_tanh(h @ w["ffn_gate"].T) * (h @ w["ffn_up"].T)
        x = x + rms(a @ w["ffn_down"].T, w["post_ffw_norm"])
        if l == HOOK_BLOCK:
            hook = x[-1].copy()
    final = rms(x[-1], output_norm)
    return final, hook


def head64(h):
    out = np.empty(n_vocab)
    for r in range(0, n_vocab, 16384):
        out[r:r + 16384] = embedding32[r:r + 16384].astype(np.float64) @ h
    return out


def top(v, k):
    ids = np.argsort(-v, kind="stable")[:k]
    return [int(i) for i in ids], [float(v[i]) for i in ids]


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


records = []
for name, text in prompts:
    tokens = vocab.tokenize(text.encode(), add_bos=True, special=True)
    llm.reset()
    llm.eval(tokens)
    lc = np.array(llm.scores[len(tokens) - 1], dtype=np.float64)
    final, hook = forward64(tokens)
    f64 = head64(final)
    lc_ids, lc_vals = top(lc, TOP)
    f_ids, f_vals = top(f64, TOP)
    rec = {
        "name": name, "text": text, "tokens": [int(t) for t in tokens],
        "llamacpp_top_ids": lc_ids, "llamacpp_top_logits": [round(v, 5) for v in lc_vals],
        "llamacpp_sample_logits": [round(float(lc[i]), 5) for i in sample_ids],
        "f64_top_ids": f_ids, "f64_top_logits": f_vals,
        "f64_final_normalized": [float(v) for v in final],
        "f64_resid_post": [float(v) for v in hook],
        # Measured here, over all 262,144 logits and over the stored sample, for the README.
        "llamacpp_vs_f64_rel_l2": rel_l2(lc, f64),
        "llamacpp_vs_f64_rel_l2_sample": rel_l2(lc[sample_ids], f64[sample_ids]),
        "f64_top2_margin": float(f_vals[0] - f_vals[1]),
    }
    if name in GREEDY_PROMPTS:
        seq = list(tokens)
        greedy = []
        for _ in range(GREEDY):
            nxt = int(np.argmax(llm.scores[len(seq) - 1]))
            greedy.append(nxt)
            seq.append(nxt)
            llm.eval([nxt])
        rec["llamacpp_greedy"] = greedy
        rec["llamacpp_greedy_text"] = vocab.detokenize(greedy).decode("utf-8", errors="replace")
    records.append(rec)
    print(f"{name:16} {len(tokens):4} tokens  llama.cpp vs f64: rel L2 {rec['llamacpp_vs_f64_rel_l2']:.4f}"
          f" (sample {rec['llamacpp_vs_f64_rel_l2_sample']:.4f}), top-1 {'equal' if lc_ids[0] == f_ids[0] else 'DIFFERS'},"
          f" f64 margin {rec['f64_top2_margin']:.3f}", file=sys.stderr)

meta = {
    "model": "gemma-3-270m-q4_k_m.gguf",
    "model_sha256": "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    "llama_cpp_python": llama_cpp.__version__,
    "llamacpp_settings": "n_ctx 1024, n_batch = n_ubatch 512, 2 threads, logits_all, defaults otherwise",
    "tokenize": "llama.cpp tokenize(add_bos=True, special=True)",
    "sample_stride": SAMPLE_STRIDE,
    "top": TOP,
    "hook_block": HOOK_BLOCK,
    "window": int(window),
    "float64": "NumPy float64 forward of the same graph on exactly dequantized weights (gguf-py)",
}
with open(out_path, "w", encoding="utf-8") as f:
    json.dump({"meta": meta, "prompts": records}, f, ensure_ascii=False, separators=(",", ":"))
    f.write("\n")
