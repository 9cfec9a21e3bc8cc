"""Writes the LoRA fixtures in Tests/Fixtures/lora (see its README.md).

1. A random but deterministic rank-8, alpha-16 adapter for SmolLM2-135M-Instruct, written with
   gguf-py exactly as llama.cpp's convert_lora_to_gguf.py lays one out (general.type = adapter,
   adapter.type = lora, adapter.lora.alpha, F16 `<base>.lora_a` [inputs, rank] and
   `<base>.lora_b` [rank, outputs] in ggml order).
2. llama.cpp's last-position logits with that adapter (llama-cpp-python, lora_path/lora_scale),
   for the default-variant prompts of Tests/Fixtures/reference.
3. The same logits from an independent float64 NumPy forward pass with the adapter applied as
   W·x + scale·(alpha/rank)·B·(A·x); without the adapter it reproduces the base float64 reference.

Usage: lora-fixtures.py MODEL.gguf OUT_DIR REFERENCE_DIR
"""
import json
import sys
from pathlib import Path

import numpy as np
import gguf

SEED = 20251205
RANK = 8
ALPHA = 16.0
SCALE = 1.0
BLOCKS = [0, 7, 15, 29]
TARGETS = ["attn_q", "attn_v", "ffn_up"]
ADAPTER_FILE = "smollm2-rank8.gguf"


def load_base(path):
    """Base weights dequantized exactly (ggml's values are float32), by GGUF name; matrices as
    (rows=outputs, cols=inputs). Every use promotes them to float64."""
    reader = gguf.GGUFReader(path)
    weights = {}
    for t in reader.tensors:
        w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        weights[t.name] = w.reshape([int(d) for d in reversed(t.shape)])
    return weights


def make_adapter(weights, path):
    """Writes the adapter and returns its factors: target -> (A (rank, in), B (out, rank)) as float64
    of the F16 values stored."""
    rng = np.random.default_rng(SEED)
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, ALPHA)
    factors = {}
    for block in BLOCKS:
        for target in TARGETS:
            name = f"blk.{block}.{target}.weight"
            out_dim, in_dim = weights[name].shape
            # A as PEFT initialises it (Kaiming-uniform-like scale); B large enough that the
            # update moves the logits visibly (a trained adapter's B is far from PEFT's zeros).
            a = rng.uniform(-1, 1, size=(RANK, in_dim)) / np.sqrt(in_dim)
            b = rng.normal(0, 0.08, size=(out_dim, RANK))
            a16, b16 = a.astype(np.float16), b.astype(np.float16)
            # numpy order (rank, in) is ggml [in, rank]; (out, rank) is ggml [rank, out].
            writer.add_tensor(name + ".lora_a", a16)
            writer.add_tensor(name + ".lora_b", b16)
            factors[name] = (a16.astype(np.float64), b16.astype(np.float64))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return factors


def rms_norm(x, w, eps=1e-5):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def forward(weights, tokens, factors, scale):
    """Last-position logits of the Llama graph in float64 (llama.cpp src/models/llama.cpp order)."""
    n_layer, heads, kv_heads, head_dim, base = 30, 9, 3, 64, 100000.0
    emb = weights["token_embd.weight"].astype(np.float64)

    def mm(name, x):
        y = x @ weights[name].T.astype(np.float64)
        if name in factors:
            a, b = factors[name]
            y = y + scale * (ALPHA / RANK) * ((x @ a.T) @ b.T)
        return y

    n = len(tokens)
    x = emb[tokens]
    pos = np.arange(n, dtype=np.float64)
    inv = base ** (-2.0 * np.arange(head_dim // 2, dtype=np.float64) / head_dim)
    ang = pos[:, None] * inv[None, :]
    cos, sin = np.cos(ang), np.sin(ang)

    def rope(v, h):
        v = v.reshape(n, h, head_dim)
        a, b = v[..., 0::2], v[..., 1::2]
        c, s = cos[:, None, :], sin[:, None, :]
        out = np.empty_like(v)
        out[..., 0::2] = a * c - b * s
        out[..., 1::2] = a * s + b * c
        return out

    mask = np.triu(np.full((n, n), -np.inf), 1)
    for l in range(n_layer):
        p = f"blk.{l}."
        xn = rms_norm(x, weights[p + "attn_norm.weight"])
        q = rope(mm(p + "attn_q.weight", xn), heads)
        k = rope(mm(p + "attn_k.weight", xn), kv_heads)
        v = mm(p + "attn_v.weight", xn).reshape(n, kv_heads, head_dim)
        att = np.empty((n, heads, head_dim))
        for h in range(heads):
            g = h // (heads // kv_heads)
            s = q[:, h, :] @ k[:, g, :].T / np.sqrt(head_dim) + mask
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s /= s.sum(axis=1, keepdims=True)
            att[:, h, :] = s @ v[:, g, :]
        x = x + mm(p + "attn_output.weight", att.reshape(n, heads * head_dim))
        xn = rms_norm(x, weights[p + "ffn_norm.weight"])
        g = mm(p + "ffn_gate.weight", xn)
        u = mm(p + "ffn_up.weight", xn)
        x = x + mm(p + "ffn_down.weight", g / (1 + np.exp(-g)) * u)
    xn = rms_norm(x[-1:], weights["output_norm.weight"])
    return (xn @ emb.T)[0]


def llama_cpp_logits(model, adapter, tokens, scale):
    import llama_cpp
    llm = llama_cpp.Llama(model_path=str(model), lora_path=str(adapter), lora_scale=scale,
                          n_ctx=1024, n_batch=512, n_ubatch=512, n_threads=2, n_threads_batch=2,
                          verbose=False)
    out = []
    for t in tokens:
        llm.reset()
        llm.eval(t)
        last = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
        out.append(np.ctypeslib.as_array(last, shape=(llm.n_vocab(),)).astype(np.float32).copy())
    return out, llama_cpp.__version__


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def main():
    model, out_dir, ref_dir = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    out_dir.mkdir(parents=True, exist_ok=True)
    reference = json.loads((ref_dir / "reference.json").read_text())
    prompts = [(p["name"], p["variants"]["default"]) for p in reference["prompts"]]
    weights = load_base(str(model))
    adapter = out_dir / ADAPTER_FILE
    factors = make_adapter(weights, adapter)

    # The float64 pass without the adapter must reproduce the base reference.
    for name, v in prompts:
        base = forward(weights, v["tokens"], {}, SCALE)
        ref = np.load(ref_dir / v["logits_file"].replace(".npy", "_f64ref.npy"))
        err = rel_l2(base, ref)
        print(f"{name}: base float64 pass vs reference f64: rel L2 {err:.2e}")
        assert err < 1e-6, "the float64 pass does not reproduce the base reference"

    llama, version = llama_cpp_logits(model, adapter, [v["tokens"] for _, v in prompts], SCALE)
    entries = []
    for (name, v), lc in zip(prompts, llama):
        f64 = forward(weights, v["tokens"], factors, SCALE)
        base = np.load(ref_dir / v["logits_file"].replace(".npy", "_f64ref.npy"))
        np.save(out_dir / f"{name}_lora_logits.npy", lc)
        np.save(out_dir / f"{name}_lora_f64ref.npy", f64.astype(np.float32))
        top2 = np.sort(f64)[-2:]
        entry = {
            "prompt": name, "tokens": v["tokens"],
            "llama_cpp_logits": f"{name}_lora_logits.npy", "f64ref_logits": f"{name}_lora_f64ref.npy",
            "llama_cpp_top10": [int(i) for i in np.argsort(-lc)[:10]],
            "f64_top1": int(np.argmax(f64)), "f64_top1_margin": float(top2[1] - top2[0]),
            "rel_l2_llama_cpp_vs_f64": rel_l2(lc.astype(np.float64), f64),
            "rel_l2_adapted_vs_base_f64": rel_l2(f64, base),
            "base_f64_top1": int(np.argmax(base)),
        }
        print(json.dumps({k: entry[k] for k in ("prompt", "rel_l2_llama_cpp_vs_f64", "rel_l2_adapted_vs_base_f64",
                                                "f64_top1", "base_f64_top1", "f64_top1_margin")}))
        entries.append(entry)
    meta = {"seed": SEED, "rank": RANK, "alpha": ALPHA, "scale": SCALE, "blocks": BLOCKS,
            "targets": TARGETS, "adapter": ADAPTER_FILE, "llama_cpp_python": version,
            "llama_cpp_config": {"n_ctx": 1024, "n_batch": 512, "n_ubatch": 512, "n_threads": 2,
                                 "flash_attn": "auto", "type_k": "f16", "type_v": "f16"},
            "gguf": gguf.__version__ if hasattr(gguf, "__version__") else "0.19.0"}
    (out_dir / "lora.json").write_text(json.dumps({"meta": meta, "prompts": entries}, indent=1) + "\n")


if __name__ == "__main__":
    main()
