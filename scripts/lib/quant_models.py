"""Requantizes the default model with llama.cpp's own quantizer (llama_model_quantize, through
llama-cpp-python) into every common GGUF type, so each type's kernels are tested end to end on a
real model (Tests/ProbityLMTests/QuantReferenceTests.swift, docs/KERNELS.md).

    quant_models.py SOURCE.gguf OUT_DIR [TYPE...]

SOURCE is the default model (Q4_1); llama.cpp dequantizes it and quantizes again
(allow_requantize). The result is deterministic: the same bytes on every run (the quantizer is
per row and does not depend on the thread count). SmolLM2's width, 576, is not a multiple of 256,
so llama.cpp writes the K-quant and IQ4_XS types only into ffn_down (1536 columns) and falls back
to 32-element types elsewhere; Q2_K_PURE (Q2_K with llama.cpp's --pure) is the one file with
Q2_K tensors. Writes OUT_DIR/SmolLM2-135M-Instruct.<TYPE>.gguf.
"""
import os
import sys

import llama_cpp

# Name in the file name -> (llama.cpp file type, pure).
TYPES = {
    "Q4_0": ("LLAMA_FTYPE_MOSTLY_Q4_0", False),
    "Q4_1": ("LLAMA_FTYPE_MOSTLY_Q4_1", False),
    "Q5_0": ("LLAMA_FTYPE_MOSTLY_Q5_0", False),
    "Q5_1": ("LLAMA_FTYPE_MOSTLY_Q5_1", False),
    "Q8_0": ("LLAMA_FTYPE_MOSTLY_Q8_0", False),
    "Q2_K": ("LLAMA_FTYPE_MOSTLY_Q2_K", False),
    "Q3_K_M": ("LLAMA_FTYPE_MOSTLY_Q3_K_M", False),
    "Q4_K_M": ("LLAMA_FTYPE_MOSTLY_Q4_K_M", False),
    "Q5_K_M": ("LLAMA_FTYPE_MOSTLY_Q5_K_M", False),
    "Q6_K": ("LLAMA_FTYPE_MOSTLY_Q6_K", False),
    "IQ4_NL": ("LLAMA_FTYPE_MOSTLY_IQ4_NL", False),
    "IQ4_XS": ("LLAMA_FTYPE_MOSTLY_IQ4_XS", False),
    "F16": ("LLAMA_FTYPE_MOSTLY_F16", False),
    "BF16": ("LLAMA_FTYPE_MOSTLY_BF16", False),
    "Q2_K_PURE": ("LLAMA_FTYPE_MOSTLY_Q2_K", True),
}


def quantize(source, out_dir, name):
    ftype, pure = TYPES[name]
    dest = os.path.join(out_dir, f"SmolLM2-135M-Instruct.{name}.gguf")
    part = dest + ".part"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, ftype)
    params.allow_requantize = True
    params.pure = pure
    params.nthread = 2
    status = llama_cpp.llama_model_quantize(source.encode(), part.encode(), params)
    if status != 0:
        if os.path.exists(part):
            os.remove(part)
        sys.exit(f"quant-models: error: llama_model_quantize returned {status} for {name}")
    os.replace(part, dest)
    print(f"quant-models: wrote {dest}", file=sys.stderr, flush=True)


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: quant_models.py SOURCE.gguf OUT_DIR [TYPE...]")
    source, out_dir, names = sys.argv[1], sys.argv[2], sys.argv[3:] or list(TYPES)
    unknown = [n for n in names if n not in TYPES]
    if unknown:
        print(f"quant-models: error: unknown type {', '.join(unknown)} (expected one of {', '.join(TYPES)})",
              file=sys.stderr)
        sys.exit(2)
    os.makedirs(out_dir, exist_ok=True)
    for name in names:
        quantize(source, out_dir, name)


if __name__ == "__main__":
    main()
