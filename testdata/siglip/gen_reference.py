#!/usr/bin/env python3
"""A small random SigLIP and the reference outputs of internal/model's SigLIP
parity tests (TestSiglipGolden*).

It re-implements Hugging Face transformers' SiglipModel
(src/transformers/models/siglip/modeling_siglip.py, as at commit
00b206564aa29563b46bfce0511de4a4f1eefc8c, the 4.4x series with
SiglipSdpaAttention; the semantics used here are unchanged in later
releases, which add text_config.projection_size for the text head) in plain
torch, since Debian's python3-torch has no transformers:

  vision: Conv2d patch embedding with bias, learned position embeddings, no
    class token, pre-LN encoder layers (bidirectional), post_layernorm of
    every token, then SiglipMultiheadAttentionPoolingHead: a learned probe
    [1,1,C] attends to the tokens through torch.nn.MultiheadAttention
    (in_proj_weight [3C,C] = q,k,v; out_proj), then
    out = h + mlp(layernorm(h)); the image embedding is out[:, 0] (no
    projection);
  text: token + position embeddings, the same encoder layers with no causal
    mask and no attention mask (SiglipProcessor pads to max_length and
    passes none), final_layer_norm, the LAST position's state, then
    text_model.head (Linear with bias, hidden_size -> projection_size);
  logits_per_text = norm(txt)·norm(img)ᵀ·exp(logit_scale) + logit_bias,
  logits_per_image its transpose;
  the sigmoid loss as SiglipModel.forward(return_loss=True) and big_vision:
    loss = -Σ logsigmoid(labels ⊙ logits_per_text) / n, labels = 2·I - 1.

The head's attention runs through torch's own
nn.functional.multi_head_attention_forward, the function
nn.MultiheadAttention calls. Activation: hidden_act of the config
(gelu_pytorch_tanh = F.gelu(approximate="tanh")). Weights are random
(seeded), scaled so that activations are of order 1, biases non-zero.

Writes, next to this script:
  model/config.json, model/model.safetensors  (HF SiglipModel layout, F32),
    model/preprocessor_config.json (SiglipImageProcessor's)
  reference.safetensors: input_ids [N,L] (I64), pixels_u8 [N,S,S,3] (U8,
    decoded images), pixel_values [N,3,S,S] (SiglipImageProcessor's
    normalisation of them: x/255, mean 0.5, std 0.5),
    image_embeds, text_embeds (raw), logits_per_text, logits_per_image,
    loss, d_image_embeds and d_text_embeds (the loss's gradient with
    respect to the raw embeddings), and grad.NAME for every parameter.

  /usr/bin/python3 testdata/siglip/gen_reference.py
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

# Arguments (for checks by hand; the committed files use the defaults):
# the activation and the output directory.
ACT = sys.argv[1] if len(sys.argv) > 1 else "gelu_pytorch_tanh"
HERE = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(os.path.abspath(__file__))

CONFIG = {
    "architectures": ["SiglipModel"],
    "model_type": "siglip",
    "initializer_factor": 1.0,
    "torch_dtype": "float32",
    "text_config": {
        "model_type": "siglip_text_model",
        "hidden_size": 24,
        "intermediate_size": 48,
        "num_attention_heads": 2,
        "num_hidden_layers": 2,
        "max_position_embeddings": 16,
        "vocab_size": 256,
        "hidden_act": ACT,
        "layer_norm_eps": 1e-6,
        "projection_size": 32,
        "pad_token_id": 1,
        "bos_token_id": 49406,
        "eos_token_id": 1,
    },
    "vision_config": {
        "model_type": "siglip_vision_model",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "image_size": 32,
        "patch_size": 8,
        "num_channels": 3,
        "hidden_act": ACT,
        "layer_norm_eps": 1e-6,
    },
}
N = 4  # pairs
# SiglipImageProcessor's preprocessor_config.json at the model's size (as
# google/siglip-base-patch16-224 has it at 224).
PREPROCESSOR = {
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.5, 0.5, 0.5],
    "image_processor_type": "SiglipImageProcessor",
    "image_std": [0.5, 0.5, 0.5],
    "processor_class": "SiglipProcessor",
    "resample": 3,
    "rescale_factor": 1 / 255,
    "size": {"height": CONFIG["vision_config"]["image_size"], "width": CONFIG["vision_config"]["image_size"]},
}


def act(x):
    if ACT == "gelu_pytorch_tanh":
        return F.gelu(x, approximate="tanh")
    if ACT == "gelu":
        return F.gelu(x)
    if ACT == "quick_gelu":
        return x * torch.sigmoid(1.702 * x)
    raise SystemExit("unknown activation " + ACT)


def param_shapes(cfg):
    tc, vc = cfg["text_config"], cfg["vision_config"]
    s = {}

    def layers(prefix, C, I, L):
        for i in range(L):
            p = "%s.encoder.layers.%d." % (prefix, i)
            for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
                s[p + "self_attn." + n + ".weight"] = (C, C)
                s[p + "self_attn." + n + ".bias"] = (C,)
            for n in ("layer_norm1", "layer_norm2"):
                s[p + n + ".weight"] = (C,)
                s[p + n + ".bias"] = (C,)
            s[p + "mlp.fc1.weight"], s[p + "mlp.fc1.bias"] = (I, C), (I,)
            s[p + "mlp.fc2.weight"], s[p + "mlp.fc2.bias"] = (C, I), (C,)

    C, I, P = vc["hidden_size"], vc["intermediate_size"], vc["patch_size"]
    NP = (vc["image_size"] // P) ** 2
    s["vision_model.embeddings.patch_embedding.weight"] = (C, 3, P, P)
    s["vision_model.embeddings.patch_embedding.bias"] = (C,)
    s["vision_model.embeddings.position_embedding.weight"] = (NP, C)
    layers("vision_model", C, I, vc["num_hidden_layers"])
    s["vision_model.post_layernorm.weight"], s["vision_model.post_layernorm.bias"] = (C,), (C,)
    h = "vision_model.head."
    s[h + "probe"] = (1, 1, C)
    s[h + "attention.in_proj_weight"], s[h + "attention.in_proj_bias"] = (3 * C, C), (3 * C,)
    s[h + "attention.out_proj.weight"], s[h + "attention.out_proj.bias"] = (C, C), (C,)
    s[h + "layernorm.weight"], s[h + "layernorm.bias"] = (C,), (C,)
    s[h + "mlp.fc1.weight"], s[h + "mlp.fc1.bias"] = (I, C), (I,)
    s[h + "mlp.fc2.weight"], s[h + "mlp.fc2.bias"] = (C, I), (C,)

    C, I = tc["hidden_size"], tc["intermediate_size"]
    s["text_model.embeddings.token_embedding.weight"] = (tc["vocab_size"], C)
    s["text_model.embeddings.position_embedding.weight"] = (tc["max_position_embeddings"], C)
    layers("text_model", C, I, tc["num_hidden_layers"])
    s["text_model.final_layer_norm.weight"], s["text_model.final_layer_norm.bias"] = (C,), (C,)
    s["text_model.head.weight"], s["text_model.head.bias"] = (tc["projection_size"], C), (tc["projection_size"],)
    s["logit_scale"], s["logit_bias"] = (1,), (1,)
    return s


def random_weights(shapes, g):
    w = {}
    for name, shape in shapes.items():
        if name == "logit_scale":
            t = torch.tensor([math.log(10.0)])
        elif name == "logit_bias":
            t = torch.tensor([-10.0])
        elif "norm" in name and name.endswith(".weight"):
            t = 1 + 0.1 * torch.randn(shape, generator=g)
        elif name.endswith("bias"):
            t = 0.1 * torch.randn(shape, generator=g)
        elif "embedding" in name or name.endswith("probe"):
            t = torch.randn(shape, generator=g)
        else:  # weights [out, in...]: fan-in scaling keeps activations O(1)
            fan_in = int(np.prod(shape[1:]))
            t = torch.randn(shape, generator=g) / math.sqrt(fan_in)
        w[name] = t.float()
    return w


def layer(w, p, x, heads, eps):
    B, T, C = x.shape
    hd = C // heads

    def lin(name, h):
        return F.linear(h, w[p + name + ".weight"], w[p + name + ".bias"])

    h = F.layer_norm(x, (C,), w[p + "layer_norm1.weight"], w[p + "layer_norm1.bias"], eps)
    q = lin("self_attn.q_proj", h).view(B, T, heads, hd).transpose(1, 2)
    k = lin("self_attn.k_proj", h).view(B, T, heads, hd).transpose(1, 2)
    v = lin("self_attn.v_proj", h).view(B, T, heads, hd).transpose(1, 2)
    a = torch.matmul(q, k.transpose(2, 3)) * hd**-0.5  # SiglipAttention: no mask
    y = torch.matmul(F.softmax(a, dim=-1, dtype=torch.float32), v).transpose(1, 2).reshape(B, T, C)
    x = x + lin("self_attn.out_proj", y)
    h = F.layer_norm(x, (C,), w[p + "layer_norm2.weight"], w[p + "layer_norm2.bias"], eps)
    return x + lin("mlp.fc2", act(lin("mlp.fc1", h)))


def image_embeds(w, cfg, px):
    vc = cfg["vision_config"]
    C, eps, heads = vc["hidden_size"], vc["layer_norm_eps"], vc["num_attention_heads"]
    x = F.conv2d(px, w["vision_model.embeddings.patch_embedding.weight"],
                 w["vision_model.embeddings.patch_embedding.bias"], stride=vc["patch_size"])
    x = x.flatten(2).transpose(1, 2) + w["vision_model.embeddings.position_embedding.weight"]
    for i in range(vc["num_hidden_layers"]):
        x = layer(w, "vision_model.encoder.layers.%d." % i, x, heads, eps)
    x = F.layer_norm(x, (C,), w["vision_model.post_layernorm.weight"], w["vision_model.post_layernorm.bias"], eps)
    h = "vision_model.head."
    probe = w[h + "probe"].repeat(x.shape[0], 1, 1)
    # nn.MultiheadAttention(batch_first=True) forward: sequence-first inside.
    att, _ = F.multi_head_attention_forward(
        probe.transpose(0, 1), x.transpose(0, 1), x.transpose(0, 1), C, heads,
        w[h + "attention.in_proj_weight"], w[h + "attention.in_proj_bias"], None, None, False, 0.0,
        w[h + "attention.out_proj.weight"], w[h + "attention.out_proj.bias"], training=False, need_weights=False)
    hs = att.transpose(0, 1)
    residual = hs
    hs = F.layer_norm(hs, (C,), w[h + "layernorm.weight"], w[h + "layernorm.bias"], eps)
    hs = F.linear(act(F.linear(hs, w[h + "mlp.fc1.weight"], w[h + "mlp.fc1.bias"])),
                  w[h + "mlp.fc2.weight"], w[h + "mlp.fc2.bias"])
    return (residual + hs)[:, 0]


def text_embeds(w, cfg, ids):
    tc = cfg["text_config"]
    C, eps, heads = tc["hidden_size"], tc["layer_norm_eps"], tc["num_attention_heads"]
    T = ids.shape[1]
    x = w["text_model.embeddings.token_embedding.weight"][ids] + w["text_model.embeddings.position_embedding.weight"][:T]
    for i in range(tc["num_hidden_layers"]):
        x = layer(w, "text_model.encoder.layers.%d." % i, x, heads, eps)
    x = F.layer_norm(x, (C,), w["text_model.final_layer_norm.weight"], w["text_model.final_layer_norm.bias"], eps)
    return F.linear(x[:, -1, :], w["text_model.head.weight"], w["text_model.head.bias"])


def logits_and_loss(w, img, txt):
    i = img / img.norm(p=2, dim=-1, keepdim=True)
    t = txt / txt.norm(p=2, dim=-1, keepdim=True)
    logits_per_text = torch.matmul(t, i.t()) * w["logit_scale"].exp() + w["logit_bias"]
    n = logits_per_text.size(0)
    labels = 2 * torch.eye(n) - 1
    loss = -torch.sum(F.logsigmoid(labels * logits_per_text), dim=-1).mean()
    return logits_per_text, loss


def save_safetensors(path, tensors):
    codes = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64", np.dtype(np.uint8): "U8"}
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        b = a.tobytes()
        header[name] = {"dtype": codes[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(path + ".tmp", path)


def main():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(15)
    w = random_weights(param_shapes(CONFIG), g)
    for t in w.values():
        t.requires_grad_(True)
    tc, vc = CONFIG["text_config"], CONFIG["vision_config"]
    L, S = tc["max_position_embeddings"], vc["image_size"]
    ids = torch.randint(2, tc["vocab_size"], (N, L), generator=g)
    # SiglipProcessor(padding="max_length"): the eos/pad id fills each row's tail.
    for r, k in enumerate([L - 3, L - 1, 5, L]):
        ids[r, k:] = tc["pad_token_id"]
    # Decoded images, then SiglipImageProcessor's rescale (1/255) and
    # normalisation (mean 0.5, std 0.5), channels first.
    px_u8 = torch.randint(0, 256, (N, S, S, 3), generator=g, dtype=torch.uint8)
    px = ((px_u8.float() * (1 / 255.0) - 0.5) / 0.5).permute(0, 3, 1, 2).contiguous()

    img = image_embeds(w, CONFIG, px)
    txt = text_embeds(w, CONFIG, ids)
    img.retain_grad()
    txt.retain_grad()
    logits_per_text, loss = logits_and_loss(w, img, txt)
    loss.backward()

    ref = {
        "input_ids": ids.numpy().astype(np.int64),
        "pixels_u8": px_u8.numpy(),
        "pixel_values": px.numpy(),
        "image_embeds": img.detach().numpy(),
        "text_embeds": txt.detach().numpy(),
        "logits_per_text": logits_per_text.detach().numpy(),
        "logits_per_image": logits_per_text.detach().t().contiguous().numpy(),
        "loss": loss.detach().reshape(1).numpy(),
        "d_image_embeds": img.grad.numpy(),
        "d_text_embeds": txt.grad.numpy(),
    }
    for name, t in w.items():
        ref["grad." + name] = t.grad.numpy()
    os.makedirs(os.path.join(HERE, "model"), exist_ok=True)
    save_safetensors(os.path.join(HERE, "model", "model.safetensors"), {k: v.detach().numpy() for k, v in w.items()})
    with open(os.path.join(HERE, "model", "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    with open(os.path.join(HERE, "model", "preprocessor_config.json"), "w") as f:
        json.dump(PREPROCESSOR, f, indent=2)
        f.write("\n")
    save_safetensors(os.path.join(HERE, "reference.safetensors"), ref)
    print("loss %.6f; %d parameters, %d values" % (loss.item(), len(w), sum(t.numel() for t in w.values())))


if __name__ == "__main__":
    main()
