#!/usr/bin/env python3
"""Five AdamW steps of full fine-tuning of the tiny golden CLIP in PyTorch:
the reference trajectory of internal/model's TestGoldenTrajectory (as
llm.c's test_gpt2 checks its losses over steps).

OpenAI CLIP semantics (pre-LN blocks, quick_gelu, causal text attention,
class-token and end-token pooling, symmetric InfoNCE at exp(logit_scale))
written out on the Hugging Face tensors, so it needs only torch and numpy
(Debian's python3-torch: no transformers). Every tensor trains, logit_scale
included; weight decay applies to tensors of 2 or more dimensions (the
trainer's rule), the global gradient norm is clipped to MAX_GRAD_NORM
before each step, and the learning rate is constant. It first checks that
it reproduces the loss and gradients of ../shared's reference.

  /usr/bin/python3 tiny_clip_adamw.py ../../../shared/golden/tiny-clip > tiny_clip_adamw.json
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

STEPS, LR, WEIGHT_DECAY, MAX_GRAD_NORM = 5, 1e-4, 0.1, 1.0
# Parameters whose values after the last step are recorded (first VALUES
# elements each): one of each kind, both towers.
RECORDED = [
    "logit_scale",
    "text_model.embeddings.token_embedding.weight",
    "text_model.encoder.layers.1.self_attn.q_proj.weight",
    "text_model.final_layer_norm.bias",
    "text_projection.weight",
    "vision_model.embeddings.class_embedding",
    "vision_model.embeddings.patch_embedding.weight",
    "vision_model.encoder.layers.0.mlp.fc1.bias",
    "vision_model.post_layernorm.weight",
    "visual_projection.weight",
]
VALUES = 6


def load_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": np.float32, "I64": np.int64, "U8": np.uint8}
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        lo, hi = t["data_offsets"]
        a = np.frombuffer(data[lo:hi], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
        out[name] = torch.from_numpy(a.copy())
    return out


def block(w, p, x, heads, causal, eps):
    B, T, C = x.shape
    hd = C // heads

    def lin(name, h):
        return F.linear(h, w[p + name + ".weight"], w[p + name + ".bias"])

    h = F.layer_norm(x, (C,), w[p + "layer_norm1.weight"], w[p + "layer_norm1.bias"], eps)
    q = lin("self_attn.q_proj", h).view(B, T, heads, hd).transpose(1, 2) * hd**-0.5
    k = lin("self_attn.k_proj", h).view(B, T, heads, hd).transpose(1, 2)
    v = lin("self_attn.v_proj", h).view(B, T, heads, hd).transpose(1, 2)
    a = q @ k.transpose(-1, -2)
    if causal:
        a = a.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    y = (a.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
    x = x + lin("self_attn.out_proj", y)
    h = lin("mlp.fc1", F.layer_norm(x, (C,), w[p + "layer_norm2.weight"], w[p + "layer_norm2.bias"], eps))
    return x + lin("mlp.fc2", h * torch.sigmoid(1.702 * h))


def loss_of(w, cfg, ids, px):
    vc, tc = cfg["vision_config"], cfg["text_config"]
    # Vision: patches, class token, positions, pre-LN, blocks, post-LN of the class token.
    x = F.conv2d(px, w["vision_model.embeddings.patch_embedding.weight"], stride=vc["patch_size"])
    x = x.flatten(2).transpose(1, 2)
    cls = w["vision_model.embeddings.class_embedding"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], 1) + w["vision_model.embeddings.position_embedding.weight"]
    C = vc["hidden_size"]
    x = F.layer_norm(x, (C,), w["vision_model.pre_layrnorm.weight"], w["vision_model.pre_layrnorm.bias"], vc["layer_norm_eps"])
    for i in range(vc["num_hidden_layers"]):
        x = block(w, f"vision_model.encoder.layers.{i}.", x, vc["num_attention_heads"], False, vc["layer_norm_eps"])
    x = F.layer_norm(x[:, 0], (C,), w["vision_model.post_layernorm.weight"], w["vision_model.post_layernorm.bias"], vc["layer_norm_eps"])
    img = F.linear(x, w["visual_projection.weight"])
    # Text: tokens and positions, causal blocks, final LN, pooled at the end token (the largest id).
    T, C = ids.shape[1], tc["hidden_size"]
    x = F.embedding(ids, w["text_model.embeddings.token_embedding.weight"]) + w["text_model.embeddings.position_embedding.weight"][:T]
    for i in range(tc["num_hidden_layers"]):
        x = block(w, f"text_model.encoder.layers.{i}.", x, tc["num_attention_heads"], True, tc["layer_norm_eps"])
    x = F.layer_norm(x, (C,), w["text_model.final_layer_norm.weight"], w["text_model.final_layer_norm.bias"], tc["layer_norm_eps"])
    txt = F.linear(x[torch.arange(ids.shape[0]), ids.argmax(-1)], w["text_projection.weight"])
    # Symmetric InfoNCE.
    logits = w["logit_scale"].exp().clamp(max=100) * F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T
    labels = torch.arange(ids.shape[0])
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def main():
    root = sys.argv[1]
    with open(os.path.join(root, "model", "config.json")) as f:
        cfg = json.load(f)
    w = load_safetensors(os.path.join(root, "model", "model.safetensors"))
    ref = load_safetensors(os.path.join(root, "reference.safetensors"))
    ids, px = ref["input_ids"], ref["pixel_values"]
    names = sorted(w)
    params = [w[n].requires_grad_(True) for n in names]

    # The reference's loss and gradients first: same model, same semantics.
    loss = loss_of(w, cfg, ids, px)
    loss.backward()
    assert abs(loss.item() - ref["loss"].item()) < 1e-5, (loss.item(), ref["loss"].item())
    for n, p in zip(names, params):
        g, r = p.grad, ref["grad." + n]
        assert (g - r).abs().max() <= 1e-4 * max(r.abs().max().item(), 1e-6) + 1e-7, n

    decay = [p for p in params if p.ndim >= 2]
    other = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": other, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.999), eps=1e-8)
    losses, norms = [], []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = loss_of(w, cfg, ids, px)
        loss.backward()
        losses.append(loss.item())
        norms.append(torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM).item())
        opt.step()
    with torch.no_grad():
        losses.append(loss_of(w, cfg, ids, px).item())
    out = {
        "generator": "testdata/trajectory/tiny_clip_adamw.py, torch " + torch.__version__,
        "model": "../shared/golden/tiny-clip (input_ids and pixel_values of its reference.safetensors)",
        "steps": STEPS, "learning_rate": LR, "weight_decay": WEIGHT_DECAY, "max_grad_norm": MAX_GRAD_NORM,
        "betas": [0.9, 0.999], "eps": 1e-8,
        "loss": losses,  # before each step, then after the last
        "grad_norm": norms,  # before clipping, at each step
        "params": {n: w[n].detach().flatten()[:VALUES].tolist() for n in RECORDED},
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
