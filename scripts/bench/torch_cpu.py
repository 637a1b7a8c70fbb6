#!/usr/bin/env python3
"""PyTorch CPU baseline for clipline's CPU benchmarks (issues 3, 4 and 14).

Debian's python3-torch (1.13, CPU) has no transformers or open_clip, so the
models are written out here with random weights built from a config, nothing
downloaded:
  - OpenAICLIP follows OpenAI's clip/model.py layer for layer (nn.MultiheadAttention
    with its fused in_proj on (L, N, C) tensors, QuickGELU MLP c_fc/c_proj,
    ln_pre/ln_post, the 77x77 causal mask, end-token pooling at ids.argmax):
    the image and text embedding figures run it.
  - CLIP is the Hugging Face layout (separate q, k, v, out projections) that
    peft puts LoRA adapters on: the training figures run it.
One call measures one thing (--only) in one precision (--mode):
  image  ViT-B/32 image embedding, batch 32, no grad (images/s)
  text   ViT-B/32 text embedding, batch 32, 20-token captions (captions/s).
         clipline runs a batch at the length of its longest caption, not at
         the 77-token context; OpenAI's encode_text always runs 77. Here the
         ids are cut to the longest caption and the mask to [:T, :T], which
         gives the same embeddings because the causal mask keeps the end
         token from seeing the padding (checked at start, in fp32).
  lora   ViT-B/32 training with LoRA r=16 alpha=32 on q,k,v,out of both
         towers, AdamW, batch 32, 12-token captions cut to their length as
         clipline's trainer does (pairs/s)
  tiny   full training of the tiny golden config, batch 32 (pairs/s)
--mode bf16 runs the forward passes (and the loss) under
torch.autocast("cpu", dtype=torch.bfloat16); backward follows autocast's casts.
Iterations: --iters, or (default) enough to fill --min-seconds after a warm-up.
Prints one JSON line: {"only", "mode", "value", "unit", "iters", "seconds", ...}.
Run: /usr/bin/python3 scripts/bench/torch_cpu.py --only image --mode bf16 [--threads 2]
Without --only it measures all four (fp32 unless --mode) and prints one JSON object.
"""
import argparse, contextlib, json, math, time
import torch
import torch.nn as nn
import torch.nn.functional as F


def quick_gelu(h):
    return h * torch.sigmoid(1.702 * h)


class LoRALinear(nn.Module):
    """peft's LoRA Linear: base(x) + s * B(A(dropout(x)))."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        self.base = base
        self.base.weight.requires_grad_(False)
        if self.base.bias is not None:
            self.base.bias.requires_grad_(False)
        self.A = nn.Parameter(torch.empty(r, base.in_features))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.B = nn.Parameter(torch.zeros(base.out_features, r))
        self.s = alpha / r
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        return self.base(x) + self.s * F.linear(F.linear(self.drop(x), self.A), self.B)


class Block(nn.Module):
    def __init__(self, c, heads, inter, causal):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.q, self.k, self.v, self.o = (nn.Linear(c, c) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(c, inter), nn.Linear(inter, c)
        self.h, self.causal = heads, causal

    def attn(self, x):
        B, T, C = x.shape
        hd = C // self.h
        q = self.q(x).view(B, T, self.h, hd).transpose(1, 2) * hd ** -0.5
        k = self.k(x).view(B, T, self.h, hd).transpose(1, 2)
        v = self.v(x).view(B, T, self.h, hd).transpose(1, 2)
        a = q @ k.transpose(-1, -2)
        if self.causal:
            a = a.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        y = a.softmax(-1) @ v
        return self.o(y.transpose(1, 2).reshape(B, T, C))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(quick_gelu(self.fc1(self.ln2(x))))


class CLIP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        v, t = cfg["vision"], cfg["text"]
        self.p = v["patch"]
        self.patch = nn.Conv2d(3, v["width"], v["patch"], v["patch"], bias=False)
        n = (v["image"] // v["patch"]) ** 2 + 1
        self.cls = nn.Parameter(torch.randn(v["width"]) * 0.02)
        self.vpos = nn.Parameter(torch.randn(n, v["width"]) * 0.02)
        self.pre, self.post = nn.LayerNorm(v["width"]), nn.LayerNorm(v["width"])
        self.vblocks = nn.ModuleList(Block(v["width"], v["heads"], 4 * v["width"], False) for _ in range(v["layers"]))
        self.vproj = nn.Linear(v["width"], cfg["dim"], bias=False)
        self.tok = nn.Embedding(t["vocab"], t["width"])
        self.tpos = nn.Parameter(torch.randn(t["context"], t["width"]) * 0.01)
        self.tblocks = nn.ModuleList(Block(t["width"], t["heads"], 4 * t["width"], True) for _ in range(t["layers"]))
        self.final = nn.LayerNorm(t["width"])
        self.tproj = nn.Linear(t["width"], cfg["dim"], bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, px):
        x = self.patch(px).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], 1, -1), x], 1) + self.vpos
        x = self.pre(x)
        for b in self.vblocks:
            x = b(x)
        return self.vproj(self.post(x[:, 0]))

    def encode_text(self, ids):
        x = self.tok(ids) + self.tpos[: ids.shape[1]]
        for b in self.tblocks:
            x = b(x)
        x = self.final(x)
        return self.tproj(x[torch.arange(ids.shape[0]), ids.argmax(-1)])


def apply_lora(m, r, alpha, dropout):
    for p in m.parameters():
        p.requires_grad_(False)
    for blk in list(m.vblocks) + list(m.tblocks):
        for name in ("q", "k", "v", "o"):
            setattr(blk, name, LoRALinear(getattr(blk, name), r, alpha, dropout))


CONFIGS = {
    "vit-b-32": {"dim": 512,
                 "vision": {"width": 768, "layers": 12, "heads": 12, "patch": 32, "image": 224},
                 "text": {"width": 512, "layers": 12, "heads": 8, "vocab": 49408, "context": 77}},
    "tiny": {"dim": 32,
             "vision": {"width": 128, "layers": 2, "heads": 2, "patch": 8, "image": 32},
             "text": {"width": 64, "layers": 2, "heads": 4, "vocab": 512, "context": 77}},
}


class OpenAILayerNorm(nn.LayerNorm):
    """clip/model.py's LayerNorm: computed in fp32, returned in the input's dtype (which is
    also what lets torch 1.13's CPU autocast run the image tower: plain nn.LayerNorm fails
    there on the bf16 output of conv1)."""

    def forward(self, x):
        return super().forward(x.float()).to(x.dtype)


class OpenAIBlock(nn.Module):
    """clip/model.py's ResidualAttentionBlock: (L, N, C) in and out."""

    def __init__(self, c, heads, mask):
        super().__init__()
        self.attn = nn.MultiheadAttention(c, heads)
        self.ln_1, self.ln_2 = OpenAILayerNorm(c), OpenAILayerNorm(c)
        self.c_fc, self.c_proj = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)
        self.mask = mask

    def forward(self, x):
        m = None if self.mask is None else self.mask[: x.shape[0], : x.shape[0]].to(x.dtype)
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False, attn_mask=m)[0]
        return x + self.c_proj(quick_gelu(self.c_fc(self.ln_2(x))))


class OpenAICLIP(nn.Module):
    """clip/model.py's VisionTransformer and text transformer (encode_image, encode_text)."""

    def __init__(self, cfg):
        super().__init__()
        v, t = cfg["vision"], cfg["text"]
        w = v["width"]
        self.conv1 = nn.Conv2d(3, w, v["patch"], v["patch"], bias=False)
        self.class_embedding = nn.Parameter(torch.randn(w) * w ** -0.5)
        self.vpos = nn.Parameter(torch.randn((v["image"] // v["patch"]) ** 2 + 1, w) * w ** -0.5)
        self.ln_pre, self.ln_post = OpenAILayerNorm(w), OpenAILayerNorm(w)
        self.visual = nn.ModuleList(OpenAIBlock(w, v["heads"], None) for _ in range(v["layers"]))
        self.vproj = nn.Parameter(torch.randn(w, cfg["dim"]) * w ** -0.5)
        mask = torch.full((t["context"], t["context"]), float("-inf")).triu_(1)
        self.token_embedding = nn.Embedding(t["vocab"], t["width"])
        self.tpos = nn.Parameter(torch.randn(t["context"], t["width"]) * 0.01)
        self.text = nn.ModuleList(OpenAIBlock(t["width"], t["heads"], mask) for _ in range(t["layers"]))
        self.ln_final = OpenAILayerNorm(t["width"])
        self.text_projection = nn.Parameter(torch.randn(t["width"], cfg["dim"]) * t["width"] ** -0.5)

    def encode_image(self, px):
        x = self.conv1(px).flatten(2).permute(0, 2, 1)
        x = torch.cat([self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1), x], 1) + self.vpos.to(x.dtype)
        x = self.ln_pre(x).permute(1, 0, 2)
        for b in self.visual:
            x = b(x)
        return self.ln_post(x.permute(1, 0, 2)[:, 0]) @ self.vproj

    def encode_text(self, ids):
        x = (self.token_embedding(ids) + self.tpos[: ids.shape[1]]).permute(1, 0, 2)
        for b in self.text:
            x = b(x)
        x = self.ln_final(x.permute(1, 0, 2))
        return x[torch.arange(x.shape[0]), ids.argmax(-1)] @ self.text_projection


def captions(cfg, b, length):
    """b captions of `length` tokens (start, words, end) in the full context,
    as the tokenize stage writes them; the end token is the largest id."""
    t = cfg["text"]
    ids = torch.zeros(b, t["context"], dtype=torch.long)
    ids[:, 0] = t["vocab"] - 2
    ids[:, 1 : length - 1] = torch.randint(1, t["vocab"] - 3, (b, length - 2))
    ids[:, length - 1] = t["vocab"] - 1
    return ids


def cut(ids):
    """ids cut to the batch's longest caption, as clipline runs them."""
    return ids[:, : int(ids.argmax(-1).max()) + 1]


def autocast(mode):
    if mode == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


MIN_SECONDS = 10.0


def timed(fn, iters):
    """Seconds for iters calls after one warm-up call (first-touch allocation,
    oneDNN primitive creation). iters 0: as many as fill MIN_SECONDS judged by
    the warm-up (at least 2), so slow paths (bf16 without avx512_bf16) still
    finish and fast ones are not dominated by noise. Returns (seconds, iters)."""
    t = time.perf_counter()
    fn()
    if iters <= 0:
        iters = max(2, math.ceil(MIN_SECONDS / (time.perf_counter() - t)))
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    return time.perf_counter() - t, iters


def bench_image(mode, iters, batch=32):
    cfg = CONFIGS["vit-b-32"]
    m = OpenAICLIP(cfg).eval()
    px = torch.randn(batch, 3, 224, 224)

    def step():
        with torch.no_grad(), autocast(mode):
            m.encode_image(px)

    dt, iters = timed(step, iters)
    return batch * iters / dt, "images/s", iters


def bench_text(mode, iters, batch=32, length=20):
    cfg = CONFIGS["vit-b-32"]
    m = OpenAICLIP(cfg).eval()
    ids = captions(cfg, batch, length)
    with torch.no_grad():  # cutting to the longest caption changes nothing
        full, short = m.encode_text(ids[:4]), m.encode_text(cut(ids[:4]))
        assert torch.allclose(full, short, atol=1e-4), (full - short).abs().max()

    def step():
        with torch.no_grad(), autocast(mode):
            m.encode_text(cut(ids))

    dt, iters = timed(step, iters)
    return batch * iters / dt, "captions/s", iters


def bench_train(mode, iters, cfg, lora, batch=32, length=12):
    m = CLIP(cfg).train()
    if lora:
        apply_lora(m, 16, 32, 0.05)  # as clipline's BenchmarkTrain
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4)
    px = torch.randn(batch, 3, cfg["vision"]["image"], cfg["vision"]["image"])
    ids = captions(cfg, batch, length)
    labels = torch.arange(batch)

    def step():
        with autocast(mode):
            i = F.normalize(m.encode_image(px), dim=-1)
            t = F.normalize(m.encode_text(cut(ids)), dim=-1)
            logits = m.logit_scale.exp() * i @ t.T
            loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in m.parameters() if p.requires_grad], 1.0)
        opt.step()

    dt, iters = timed(step, iters)
    return batch * iters / dt, "pairs/s", iters


MEASURES = {
    "image": bench_image,
    "text": bench_text,
    "lora": lambda mode, it: bench_train(mode, it, CONFIGS["vit-b-32"], True),
    "tiny": lambda mode, it: bench_train(mode, it, CONFIGS["tiny"], False),
}


def main():
    global MIN_SECONDS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--iters", type=int, default=0,
                    help="timed iterations (default 0: enough to fill --min-seconds)")
    ap.add_argument("--min-seconds", type=float, default=MIN_SECONDS,
                    help="timed seconds to aim for when --iters is 0 (default %(default)s)")
    ap.add_argument("--mode", choices=("fp32", "bf16"), default="fp32",
                    help='fp32, or bf16 = torch.autocast("cpu", dtype=torch.bfloat16)')
    ap.add_argument("--only", choices=tuple(MEASURES), help="measure one thing (default: all)")
    a = ap.parse_args()
    MIN_SECONDS = a.min_seconds
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    base = {"torch": torch.__version__, "threads": a.threads, "mode": a.mode}
    if a.only:
        t = time.perf_counter()
        v, unit, it = MEASURES[a.only](a.mode, a.iters)
        print(json.dumps({**base, "only": a.only, "value": v, "unit": unit, "iters": it,
                          "seconds": time.perf_counter() - t}))
        return
    out = dict(base)
    for name, fn in MEASURES.items():
        v, unit, _ = fn(a.mode, a.iters)
        out[name + "_" + unit.replace("/", "_per_")] = v
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
