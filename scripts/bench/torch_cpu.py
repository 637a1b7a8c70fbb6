#!/usr/bin/env python3
"""PyTorch CPU baseline for clipline's CPU benchmarks (issues 3 and 4).

Debian's python3-torch (1.13, CPU) has no transformers, so this is a compact
OpenAI-semantics CLIP (pre-LN blocks, quick_gelu, causal text mask, class-token
and end-token pooling) with random weights built from a config, nothing
downloaded. It measures, on the same machine as clipline's Go benchmarks:
  - image embedding, images/s (ViT-B/32, batch 32, no grad)
  - training pairs/s with LoRA (r=16 on q,k,v,out of both towers, AdamW) at
    batch 32 for ViT-B/32, and full training for the tiny golden config.
Run: /usr/bin/python3 scripts/bench/torch_cpu.py [--threads 2] > torch_cpu.json
"""
import argparse, json, math, time
import torch
import torch.nn as nn
import torch.nn.functional as F


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, r: int, alpha: float):
        super().__init__()
        self.base = base
        self.base.weight.requires_grad_(False)
        if self.base.bias is not None:
            self.base.bias.requires_grad_(False)
        self.A = nn.Parameter(torch.empty(r, base.in_features))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.B = nn.Parameter(torch.zeros(base.out_features, r))
        self.s = alpha / r

    def forward(self, x):
        return self.base(x) + self.s * F.linear(F.linear(x, self.A), self.B)


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
        h = self.fc1(self.ln2(x))
        return x + self.fc2(h * torch.sigmoid(1.702 * h))


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


def apply_lora(m, r, alpha):
    for p in m.parameters():
        p.requires_grad_(False)
    for blk in list(m.vblocks) + list(m.tblocks):
        for name in ("q", "k", "v", "o"):
            setattr(blk, name, LoRALinear(getattr(blk, name), r, alpha))


CONFIGS = {
    "vit-b-32": {"dim": 512,
                 "vision": {"width": 768, "layers": 12, "heads": 12, "patch": 32, "image": 224},
                 "text": {"width": 512, "layers": 12, "heads": 8, "vocab": 49408, "context": 77}},
    "tiny": {"dim": 32,
             "vision": {"width": 128, "layers": 2, "heads": 2, "patch": 8, "image": 32},
             "text": {"width": 64, "layers": 2, "heads": 4, "vocab": 512, "context": 77}},
}


def inputs(cfg, b):
    px = torch.randn(b, 3, cfg["vision"]["image"], cfg["vision"]["image"])
    ids = torch.randint(1, cfg["text"]["vocab"] - 1, (b, cfg["text"]["context"]))
    ids[:, 20] = cfg["text"]["vocab"] - 1  # end token is the argmax
    return px, ids


def bench_embed(cfg, batch, iters):
    m = CLIP(cfg).eval()
    px, _ = inputs(cfg, batch)
    with torch.no_grad():
        m.encode_image(px)
        t = time.perf_counter()
        for _ in range(iters):
            m.encode_image(px)
        dt = time.perf_counter() - t
    return batch * iters / dt


def bench_train(cfg, batch, iters, lora):
    m = CLIP(cfg).train()
    if lora:
        apply_lora(m, 16, 32)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4)
    px, ids = inputs(cfg, batch)
    labels = torch.arange(batch)

    def step():
        i = F.normalize(m.encode_image(px), dim=-1)
        t = F.normalize(m.encode_text(ids), dim=-1)
        logits = m.logit_scale.exp() * i @ t.T
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    t = time.perf_counter()
    for _ in range(iters):
        step()
    return batch * iters / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    out = {"torch": torch.__version__, "threads": a.threads,
           "vit_b32_embed_images_per_s": bench_embed(CONFIGS["vit-b-32"], 32, a.iters),
           "vit_b32_lora_train_pairs_per_s_b32": bench_train(CONFIGS["vit-b-32"], 32, a.iters, True),
           "tiny_full_train_pairs_per_s_b32": bench_train(CONFIGS["tiny"], 32, 20 * a.iters, False)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
