"""Writes a random LoRA adapter for SmolLM2-135M on every matrix of every block (attn_q, attn_k,
attn_v, attn_output, ffn_gate, ffn_up, ffn_down; PEFT's usual "all linear layers" target), F16,
with gguf-py as llama.cpp's convert_lora_to_gguf.py lays one out. For measuring speed only
(docs/BENCHMARKS.md, "LoRA adapters"); its numbers mean nothing.

Usage: lora-bench-adapter.py OUT.gguf [RANK]"""
import sys

import numpy as np
import gguf

out, rank = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 16
width, ffn, kv = 576, 1536, 192
shapes = {"attn_q": (width, width), "attn_k": (kv, width), "attn_v": (kv, width), "attn_output": (width, width),
          "ffn_gate": (ffn, width), "ffn_up": (ffn, width), "ffn_down": (width, ffn)}
rng = np.random.default_rng(1)
w = gguf.GGUFWriter(out, arch="llama")
w.add_type(gguf.GGUFType.ADAPTER)
w.add_string(gguf.Keys.Adapter.TYPE, "lora")
w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(2 * rank))
for block in range(30):
    for name, (outputs, inputs) in shapes.items():
        t = f"blk.{block}.{name}.weight"
        w.add_tensor(t + ".lora_a", (rng.uniform(-1, 1, (rank, inputs)) / np.sqrt(inputs)).astype(np.float16))
        w.add_tensor(t + ".lora_b", rng.normal(0, 0.01, (outputs, rank)).astype(np.float16))
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
