"""Reference outputs for the tiny family models (scripts/lib/tiny_models.py): llama.cpp's logits and
an independent float64 NumPy forward of each family's graph, one JSON file per family.

    families_reference.py TINY_DIR OUT_DIR [FAMILY...]

Run by scripts/families-reference in the llama-cpp-python environment. For each prompt it stores
the text; llama.cpp's tokens (add special tokens as the vocabulary says, parse special); llama.cpp's
argmax at every position, and at the last position its top-16 ids and its logits at every
SAMPLE_STRIDE-th vocabulary id; the float64 pass's final normalized state (ln_final) at every
position, its residual leaving block 0 at the last position and its top-16 at the last position.
The tests recompute float64 logits from the stored state and the model's own output matrix.
"""
import hashlib
import json
import os
import sys

import numpy as np
import gguf
from gguf.quants import dequantize
import llama_cpp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_models import FAMILIES  # noqa: E402

SAMPLE_STRIDE = 64
TOP = 16

LONG = ("The river ran low that summer, and the children of the village walked along its bed, turning "
        "over stones to find the small crabs that hid beneath them. Their grandmother watched from the "
        "bridge, remembering a year when the water had climbed over the banks and into the bakery, and "
        "how the baker had sold bread from a rowing boat for a week. Nobody believed her, but the marks "
        "were still on the wall, painted in blue, with the year beside them: 1953. In the evening the "
        "wind turned, the swallows flew low over the fields, and by midnight the first rain in two "
        "months was drumming on the roofs, filling the gutters, and waking the dogs, who barked at the "
        "thunder as if it were a stranger at the gate.")

COMMON = [
    ("plain", "The capital of France is"),
    ("code", "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) +"),
    ("unicode", "Café, naïve, 東京, Москва, 😀 and ½ — “quoted” text…"),
    ("numbers", "In 2024, 1,234,567 people paid $89.99 each; that's 3.14159 × 10^8 in total!"),
    ("spaces", "  leading spaces,\ttabs\tand   runs of   spaces\n\nand blank lines\n"),
    ("long", LONG),
]
CHAT = {
    "qwen2": "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "qwen3": "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
    "llama3": ("<|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\n"),
    "mistral": "[INST] What is the capital of France? [/INST]",
    "phi3": "<|user|>\nWhat is the capital of France?<|end|>\n<|assistant|>\n",
}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Float64Model:
    """The family's graph in float64 on exactly dequantized weights, read from the file by name."""

    def __init__(self, path, family):
        spec = FAMILIES[family]
        self.spec = spec
        reader = gguf.GGUFReader(path)
        self.tensors = {t.name: t for t in reader.tensors}
        arch = spec["arch"]

        def field(key, default=None):
            f = reader.fields.get(f"{arch}.{key}")
            return default if f is None else f.contents()

        self.width = field("embedding_length")
        self.blocks = field("block_count")
        self.heads = field("attention.head_count")
        self.kv_heads = field("attention.head_count_kv")
        self.head_dim = field("attention.key_length", self.width // self.heads)
        self.ffn = field("feed_forward_length")
        self.eps = field("attention.layer_norm_rms_epsilon")
        self.base = field("rope.freq_base", 10000.0)
        self.halves = arch != "llama"     # llama.cpp: LLAMA is rope "normal", QWEN2/QWEN3/PHI3 "neox"
        factors = self.weight("rope_freqs.weight") if "rope_freqs.weight" in self.tensors else None
        d = self.head_dim
        inv = self.base ** (-2.0 * np.arange(d // 2) / d)
        self.inv = inv / factors if factors is not None else inv
        self.embedding = self.weight("token_embd.weight")
        self.output = self.weight("output.weight") if "output.weight" in self.tensors else self.embedding

    def weight(self, name):
        t = self.tensors[name]
        w = dequantize(t.data, t.tensor_type)
        return np.asarray(w, dtype=np.float64).reshape([int(x) for x in reversed(t.shape)])

    def has(self, name):
        return name in self.tensors

    def rms(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope(self, x, positions):
        # x: (n, heads, d)
        ang = positions[:, None] * self.inv[None, :]
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        out = x.copy()
        if self.halves:
            h = x.shape[-1] // 2
            a, b = x[..., :h], x[..., h:]
            out[..., :h], out[..., h:] = a * cos - b * sin, a * sin + b * cos
        else:
            a, b = x[..., 0::2], x[..., 1::2]
            out[..., 0::2], out[..., 1::2] = a * cos - b * sin, a * sin + b * cos
        return out

    def forward(self, tokens):
        n, d, H, K = len(tokens), self.head_dim, self.heads, self.kv_heads
        q_w, kv_w = H * d, K * d
        x = self.embedding[tokens]
        pos = np.arange(n, dtype=np.float64)
        resid0 = None
        for l in range(self.blocks):
            p = f"blk.{l}."
            h = self.rms(x, self.weight(p + "attn_norm.weight"))
            if self.has(p + "attn_qkv.weight"):
                qkv = h @ self.weight(p + "attn_qkv.weight").T
                q, k, v = qkv[:, :q_w], qkv[:, q_w:q_w + kv_w], qkv[:, q_w + kv_w:]
            else:
                q = h @ self.weight(p + "attn_q.weight").T
                k = h @ self.weight(p + "attn_k.weight").T
                v = h @ self.weight(p + "attn_v.weight").T
            if self.has(p + "attn_q.bias"):
                q = q + self.weight(p + "attn_q.bias")
                k = k + self.weight(p + "attn_k.bias")
                v = v + self.weight(p + "attn_v.bias")
            q, k, v = q.reshape(n, H, d), k.reshape(n, K, d), v.reshape(n, K, d)
            if self.has(p + "attn_q_norm.weight"):
                q = self.rms(q, self.weight(p + "attn_q_norm.weight"))
                k = self.rms(k, self.weight(p + "attn_k_norm.weight"))
            q, k = self.rope(q, pos), self.rope(k, pos)
            group = H // K
            att = np.zeros((n, H, d))
            mask = np.triu(np.full((n, n), -np.inf), 1)
            for hh in range(H):
                kh = hh // group
                s = q[:, hh, :] @ k[:, kh, :].T / np.sqrt(d) + mask
                s = np.exp(s - s.max(axis=1, keepdims=True))
                s /= s.sum(axis=1, keepdims=True)
                att[:, hh, :] = s @ v[:, kh, :]
            x = x + att.reshape(n, q_w) @ self.weight(p + "attn_output.weight").T
            h = self.rms(x, self.weight(p + "ffn_norm.weight"))
            if self.has(p + "ffn_gate.weight"):
                gate = h @ self.weight(p + "ffn_gate.weight").T
                up = h @ self.weight(p + "ffn_up.weight").T
            else:
                both = h @ self.weight(p + "ffn_up.weight").T
                gate, up = both[:, :self.ffn], both[:, self.ffn:]
            x = x + (gate / (1 + np.exp(-gate)) * up) @ self.weight(p + "ffn_down.weight").T
            if l == 0:
                resid0 = x[-1].copy()
        final = self.rms(x, self.weight("output_norm.weight"))
        return final, resid0, final @ self.output.T


def short(values):
    """Floats to 9 significant digits (float32 precision), to keep the fixture small."""
    return [float(f"{v:.9g}") for v in values]


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def run(family, tiny_dir, out_dir):
    path = os.path.join(tiny_dir, f"{family}.gguf")
    prompts = COMMON[:-1] + [("chat", CHAT[family]), COMMON[-1]]
    llm = llama_cpp.Llama(model_path=path, n_ctx=512, n_batch=512, n_ubatch=512, logits_all=True,
                          n_threads=2, n_threads_batch=2, verbose=False)
    f64 = Float64Model(path, family)
    out = []
    for name, text in prompts:
        tokens = llm.tokenize(text.encode(), add_bos=True, special=True)
        llm.reset()
        llm.eval(tokens)
        logits = np.array(llm.scores[:len(tokens)], dtype=np.float64)
        final, resid0, ref = f64.forward(np.array(tokens))
        last, ref_last = logits[-1], ref[-1]
        top = np.argsort(-last)[:TOP]
        ref_top = np.argsort(-ref_last)[:TOP]
        sorted_ref = np.sort(ref, axis=1)
        margins = sorted_ref[:, -1] - sorted_ref[:, -2]
        argmax_llama = logits.argmax(axis=1)
        argmax_ref = ref.argmax(axis=1)
        out.append({
            "name": name, "text": text, "tokens": tokens,
            "llamacpp_argmax": argmax_llama.tolist(),
            "llamacpp_top_ids": top.tolist(),
            "llamacpp_sample_logits": short(last[::SAMPLE_STRIDE]),
            "f64_final_normalized": short(final.reshape(-1)),
            "f64_resid_post_0": short(resid0),
            "f64_top_ids": ref_top.tolist(),
            "f64_top_logits": short(ref_last[i] for i in ref_top),
            "f64_margins": short(margins),
        })
        print(f"{family} {name}: {len(tokens)} tokens, llama.cpp vs float64 rel L2 (last) "
              f"{rel_l2(last, ref_last):.2e}, sample {rel_l2(last[::SAMPLE_STRIDE], ref_last[::SAMPLE_STRIDE]):.2e}, "
              f"argmax agree {int((argmax_llama == argmax_ref).sum())}/{len(tokens)}, "
              f"min margin {margins.min():.3f}, last margin {margins[-1]:.3f}", flush=True)
    meta = {
        "family": family, "model": f"{family}.gguf", "model_sha256": sha256(path),
        "architecture": FAMILIES[family]["arch"], "vocabulary": f"ggml-vocab-{FAMILIES[family]['vocab']}.gguf",
        "llama_cpp_python": llama_cpp.__version__,
        "llamacpp_settings": "n_ctx 512, n_batch = n_ubatch 512, 2 threads, logits_all, defaults otherwise",
        "tokenize": "llama.cpp tokenize(add_bos=True, special=True)",
        "sample_stride": SAMPLE_STRIDE, "top": TOP, "width": f64.width,
    }
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"{family}.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "prompts": out}, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")


def main():
    tiny_dir, out_dir = sys.argv[1], sys.argv[2]
    for family in sys.argv[3:] or list(FAMILIES):
        run(family, tiny_dir, out_dir)


if __name__ == "__main__":
    main()
