#!/usr/bin/env python3
"""Checks testdata/siglip's reference against transformers' own SiglipModel
(where transformers is installed, e.g. a GPU session; CI and Debian's
python3-torch have none): the same random weights (model/) and inputs, the
model's forward with return_loss=True and its backward, compared with
reference.safetensors (gen_reference.py's plain-torch re-implementation,
which the Go parity tests read). Prints a JSON summary and exits 1 beyond
1e-4 (relative to each tensor's largest value).

  python3 testdata/siglip/check_transformers.py
"""
import json
import os
import sys

import torch
import transformers
from safetensors.torch import load_file
from transformers import SiglipModel

HERE = os.path.dirname(os.path.abspath(__file__))


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp(min=1e-6)).item()


def main():
    ref = load_file(os.path.join(HERE, "reference.safetensors"))
    m = SiglipModel.from_pretrained(os.path.join(HERE, "model"), attn_implementation="eager").float()
    m.train()  # dropout is 0: train() only keeps the autograd graph honest
    out = m(input_ids=ref["input_ids"].long(), pixel_values=ref["pixel_values"], return_loss=True)
    out.loss.backward()
    img = m.get_image_features(pixel_values=ref["pixel_values"])
    txt = m.get_text_features(input_ids=ref["input_ids"].long())
    img = img if torch.is_tensor(img) else img.pooler_output
    txt = txt if torch.is_tensor(txt) else txt.pooler_output
    res = {
        "transformers": transformers.__version__,
        "image_embeds": rel(img.detach(), ref["image_embeds"]),
        "text_embeds": rel(txt.detach(), ref["text_embeds"]),
        "logits_per_text": rel(out.logits_per_text.detach(), ref["logits_per_text"]),
        "loss": rel(out.loss.detach().reshape(1), ref["loss"]),
    }
    worst, missing = ("", 0.0), []
    for name, p in m.named_parameters():
        key = "grad." + name
        if key not in ref:
            missing.append(name)
            continue
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        if name.endswith("k_proj.bias"):
            continue  # analytically zero; float noise on both sides
        if name.endswith("attention.in_proj_bias"):
            C = g.shape[0] // 3
            g, r = torch.cat([g[:C], g[2 * C:]]), torch.cat([ref[key][:C], ref[key][2 * C:]])
        else:
            r = ref[key]
        e = rel(g, r.reshape(g.shape))
        if e > worst[1]:
            worst = (name, e)
    res["worst_gradient"] = {"name": worst[0], "relative": worst[1]}
    res["parameters_without_reference"] = missing
    ok = not missing and max(v for k, v in res.items() if isinstance(v, float)) <= 1e-4 and worst[1] <= 1e-4
    res["ok_within_1e-4"] = ok
    print(json.dumps(res, indent=1))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
