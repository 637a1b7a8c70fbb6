#!/usr/bin/env python3
"""Reference outputs and gradients of small random CLIP models whose MLPs use
gelu (exact, erf) and gelu_pytorch_tanh: internal/model's TestGELUGolden.

OpenAI CLIP's model semantics (pre-LN blocks, causal text attention,
class-token and end-token pooling, symmetric InfoNCE at exp(logit_scale)),
written out on the Hugging Face tensors as testdata/trajectory/
tiny_clip_adamw.py does, with the MLP's activation swapped for
F.gelu(h) or F.gelu(h, approximate="tanh") (transformers' "gelu" and
"gelu_pytorch_tanh"; "gelu_new" is the same tanh formula). It needs only
torch and numpy (Debian's python3-torch 1.13).

For each activation it writes ACT/config.json and ACT/model.safetensors (a
model it draws at random: weights scaled so the MLP's inputs are of order 1,
where the activations differ) and ACT/reference.safetensors: the inputs
(input_ids, pixel_values), image_embeds, text_embeds, logits_per_image, loss
and grad.NAME for every parameter.

  cd testdata/gelu-clip && /usr/bin/python3 make_reference.py
"""
import json
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

ACTIVATIONS = {
    "gelu": lambda h: F.gelu(h),
    "gelu_pytorch_tanh": lambda h: F.gelu(h, approximate="tanh"),
}
N = 3  # batch


def config(act):
    tower = dict(hidden_size=16, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2,
                 hidden_act=act, layer_norm_eps=1e-5, projection_dim=8)
    return {
        "architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": 8,
        "logit_scale_init_value": 2.6592,
        "text_config": dict(tower, model_type="clip_text_model", max_position_embeddings=12, vocab_size=64,
                            bos_token_id=62, eos_token_id=63, pad_token_id=1),
        "vision_config": dict(tower, model_type="clip_vision_model", image_size=16, patch_size=4, num_channels=3),
    }


def shapes(cfg):
    tc, vc, D = cfg["text_config"], cfg["vision_config"], cfg["projection_dim"]
    s = {"logit_scale": []}

    def tower(prefix, c):
        C, I = c["hidden_size"], c["intermediate_size"]
        for i in range(c["num_hidden_layers"]):
            p = f"{prefix}.encoder.layers.{i}."
            for ln in ("layer_norm1", "layer_norm2"):
                s[p + ln + ".weight"], s[p + ln + ".bias"] = [C], [C]
            for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
                s[p + "self_attn." + name + ".weight"], s[p + "self_attn." + name + ".bias"] = [C, C], [C]
            s[p + "mlp.fc1.weight"], s[p + "mlp.fc1.bias"] = [I, C], [I]
            s[p + "mlp.fc2.weight"], s[p + "mlp.fc2.bias"] = [C, I], [C]

    C = tc["hidden_size"]
    s["text_model.embeddings.token_embedding.weight"] = [tc["vocab_size"], C]
    s["text_model.embeddings.position_embedding.weight"] = [tc["max_position_embeddings"], C]
    tower("text_model", tc)
    s["text_model.final_layer_norm.weight"], s["text_model.final_layer_norm.bias"] = [C], [C]
    s["text_projection.weight"] = [D, C]
    C, P = vc["hidden_size"], vc["patch_size"]
    tokens = (vc["image_size"] // P) ** 2 + 1
    s["vision_model.embeddings.class_embedding"] = [C]
    s["vision_model.embeddings.patch_embedding.weight"] = [C, 3, P, P]
    s["vision_model.embeddings.position_embedding.weight"] = [tokens, C]
    s["vision_model.pre_layrnorm.weight"], s["vision_model.pre_layrnorm.bias"] = [C], [C]
    tower("vision_model", vc)
    s["vision_model.post_layernorm.weight"], s["vision_model.post_layernorm.bias"] = [C], [C]
    s["visual_projection.weight"] = [D, C]
    return s


def init(name, shape, g):
    """Weights of order 1/sqrt(fan_in), so that layer-normed inputs reach
    the MLP's activation at order 1; layer norms near 1; biases 0.1."""
    if name == "logit_scale":
        return torch.tensor(2.6592)
    if name.endswith("layer_norm1.weight") or name.endswith("layer_norm2.weight") or "layernorm.weight" in name \
            or "layrnorm.weight" in name or name.endswith("final_layer_norm.weight"):
        return 1 + 0.1 * torch.randn(shape, generator=g)
    if len(shape) == 1:
        return (0.1 if "bias" in name else 0.5) * torch.randn(shape, generator=g)
    if "embedding" in name:
        return 0.5 * torch.randn(shape, generator=g)
    fan_in = int(np.prod(shape[1:]))
    return 1.5 * torch.randn(shape, generator=g) / fan_in**0.5


def block(w, p, x, heads, causal, eps, act):
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
    return x + lin("mlp.fc2", ACTIVATIONS[act](h))


def forward(w, cfg, ids, px):
    vc, tc = cfg["vision_config"], cfg["text_config"]
    x = F.conv2d(px, w["vision_model.embeddings.patch_embedding.weight"], stride=vc["patch_size"])
    x = x.flatten(2).transpose(1, 2)
    cls = w["vision_model.embeddings.class_embedding"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], 1) + w["vision_model.embeddings.position_embedding.weight"]
    C = vc["hidden_size"]
    x = F.layer_norm(x, (C,), w["vision_model.pre_layrnorm.weight"], w["vision_model.pre_layrnorm.bias"], vc["layer_norm_eps"])
    for i in range(vc["num_hidden_layers"]):
        x = block(w, f"vision_model.encoder.layers.{i}.", x, vc["num_attention_heads"], False, vc["layer_norm_eps"], vc["hidden_act"])
    x = F.layer_norm(x[:, 0], (C,), w["vision_model.post_layernorm.weight"], w["vision_model.post_layernorm.bias"], vc["layer_norm_eps"])
    img = F.linear(x, w["visual_projection.weight"])
    T, C = ids.shape[1], tc["hidden_size"]
    x = F.embedding(ids, w["text_model.embeddings.token_embedding.weight"]) + w["text_model.embeddings.position_embedding.weight"][:T]
    for i in range(tc["num_hidden_layers"]):
        x = block(w, f"text_model.encoder.layers.{i}.", x, tc["num_attention_heads"], True, tc["layer_norm_eps"], tc["hidden_act"])
    x = F.layer_norm(x, (C,), w["text_model.final_layer_norm.weight"], w["text_model.final_layer_norm.bias"], tc["layer_norm_eps"])
    txt = F.linear(x[torch.arange(ids.shape[0]), ids.argmax(-1)], w["text_projection.weight"])
    logits = w["logit_scale"].exp().clamp(max=100) * F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T
    labels = torch.arange(ids.shape[0])
    loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    return img, txt, logits, loss


def save_safetensors(path, tensors):
    dtypes = {torch.float32: "F32", torch.int64: "I64"}
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        b = t.numpy().tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    for seed, act in enumerate(ACTIVATIONS):
        g = torch.Generator().manual_seed(1000 + seed)
        cfg = config(act)
        w = {n: init(n, s, g).float() for n, s in shapes(cfg).items()}
        tc, vc = cfg["text_config"], cfg["vision_config"]
        T, V = tc["max_position_embeddings"], tc["vocab_size"]
        ids = torch.randint(2, V - 1, (N, T), generator=g)
        for i, end in enumerate([T - 1, 4, 7]):
            ids[i, end] = V - 1  # the end token (the largest id) ends each text
            ids[i, end + 1:] = 1
        px = torch.randn(N, 3, vc["image_size"], vc["image_size"], generator=g)
        os.makedirs(act, exist_ok=True)
        with open(os.path.join(act, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
        save_safetensors(os.path.join(act, "model.safetensors"), w)
        for p in w.values():
            p.requires_grad_(True)
        img, txt, logits, loss = forward(w, cfg, ids, px)
        loss.backward()
        ref = {"input_ids": ids, "pixel_values": px, "image_embeds": img, "text_embeds": txt,
               "logits_per_image": logits, "loss": loss.reshape(1)}
        ref.update({"grad." + n: p.grad for n, p in w.items()})
        save_safetensors(os.path.join(act, "reference.safetensors"), ref)
        print(f"{act}: loss {loss.item():.6f}, torch {torch.__version__}")


if __name__ == "__main__":
    main()
