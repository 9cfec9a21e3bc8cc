"""Reference outputs for the default model requantized into every common type
(scripts/lib/quant_models.py): llama.cpp's logits and an independent float64 NumPy forward on the
same file's weights, exactly dequantized by gguf-py. One small JSON file per type.

    quant_reference.py QUANT_DIR OUT_DIR [TYPE...]

Run by scripts/quant-reference in the llama-cpp-python environment. For each prompt it stores the
text; llama.cpp's tokens; llama.cpp's argmax at every position and, at the last position, its
top-16 ids and its logits at every SAMPLE_STRIDE-th vocabulary id; the float64 pass's argmax and
top-1 minus top-2 margin at every position, its final normalized state (ln_final) at the last
position and its top-16 there. The tests recompute the float64 logits over the whole vocabulary
from the stored state and the model's own output matrix. Floats are stored to 7 significant
digits (far below every tolerance the tests apply).
"""
import hashlib
import json
import os
import sys

import numpy as np
import llama_cpp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import families_reference  # noqa: E402
from families_reference import Float64Model  # noqa: E402
from quant_models import TYPES  # noqa: E402

SAMPLE_STRIDE = 64
TOP = 16

PROMPTS = [
    ("plain", "The capital of France is"),
    ("code", "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) +"),
    ("chat", "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
             "<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"),
    ("long", families_reference.LONG),
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def short(values):
    return [float(f"{v:.7g}") for v in values]


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def run(name, quant_dir, out_dir):
    path = os.path.join(quant_dir, f"SmolLM2-135M-Instruct.{name}.gguf")
    llm = llama_cpp.Llama(model_path=path, n_ctx=512, n_batch=512, n_ubatch=512, logits_all=True,
                          n_threads=2, n_threads_batch=2, verbose=False)
    families_reference.FAMILIES.setdefault("smollm2", {"arch": "llama"})
    f64 = Float64Model(path, "smollm2")
    types = {}
    for t in f64.tensors.values():
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    out = []
    agree_total = positions = 0
    for pname, text in PROMPTS:
        tokens = llm.tokenize(text.encode(), add_bos=True, special=True)
        llm.reset()
        llm.eval(tokens)
        logits = np.array(llm.scores[:len(tokens)], dtype=np.float64)
        final, _, ref = f64.forward(np.array(tokens))
        last, ref_last = logits[-1], ref[-1]
        sorted_ref = np.sort(ref, axis=1)
        margins = sorted_ref[:, -1] - sorted_ref[:, -2]
        argmax_llama, argmax_ref = logits.argmax(axis=1), ref.argmax(axis=1)
        ref_top = np.argsort(-ref_last)[:TOP]
        out.append({
            "name": pname, "text": text, "tokens": tokens,
            "llamacpp_argmax": argmax_llama.tolist(),
            "llamacpp_top_ids": np.argsort(-last)[:TOP].tolist(),
            "llamacpp_sample_logits": short(last[::SAMPLE_STRIDE]),
            "f64_argmax": argmax_ref.tolist(),
            "f64_margins": short(margins),
            "f64_final_last": short(final[-1]),
            "f64_top_ids": ref_top.tolist(),
            "f64_top_logits": short(ref_last[i] for i in ref_top),
        })
        agree = int((argmax_llama == argmax_ref).sum())
        agree_total += agree
        positions += len(tokens)
        print(f"{name} {pname}: {len(tokens)} tokens, llama.cpp vs float64 rel L2 (last) {rel_l2(last, ref_last):.3f}, "
              f"top-1 agree {agree}/{len(tokens)}", flush=True)
    print(f"{name}: llama.cpp and float64 agree on the top-1 at {agree_total}/{positions} positions", flush=True)
    meta = {
        "type": name, "model": os.path.basename(path), "model_sha256": sha256(path),
        "tensor_types": dict(sorted(types.items())),
        "llama_cpp_python": llama_cpp.__version__,
        "llamacpp_settings": "n_ctx 512, n_batch = n_ubatch 512, 2 threads, logits_all, defaults otherwise",
        "tokenize": "llama.cpp tokenize(add_bos=True, special=True)",
        "sample_stride": SAMPLE_STRIDE, "top": TOP, "width": f64.width,
    }
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"{name}.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "prompts": out}, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")


def main():
    quant_dir, out_dir = sys.argv[1], sys.argv[2]
    for name in sys.argv[3:] or list(TYPES):
        run(name, quant_dir, out_dir)


if __name__ == "__main__":
    main()
